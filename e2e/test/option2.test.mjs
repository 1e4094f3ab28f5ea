// Option 2 of the guide (user consent with approval requests), in a fresh Accord + Meeting
// Insights pair: Contoso has not given admin consent, users may consent only to low-impact
// permissions, and the admin-consent request workflow is on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ACCORD, SUPPORT_PASSWORD, VENDOR, accordSignIn, launchBrowser, mainText, person, startPair, story, waitUrl } from "../support.mjs";

describe("option 2: user consent with approval requests", { concurrency: 1 }, () => {
  let pair, browser;

  before(async () => {
    pair = await startPair("option2");
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await pair?.stop();
  });

  let modeSet = false;

  /** Vendor support switches Contoso's instance to User consent (once). */
  async function userConsentMode(st) {
    if (modeSet) return;
    const support = await person(browser, st);
    await support.goto(`${VENDOR}/support`);
    await support.fill("#password", SUPPORT_PASSWORD);
    await support.click("#support-login-button");
    await support.selectOption("#mode-contoso", "user_consent");
    await support.shot("support-user-consent");
    await support.click("#save-mode-contoso");
    assert.equal(await support.locator("#instance-contoso").getAttribute("data-mode"), "user_consent");
    await support.context().close();
    modeSet = true;
  }

  /** A user connects their calendar, gets "Approval required" and sends a request. */
  async function requestApproval(st, upn, reason) {
    const who = upn.split("@")[0];
    const page = await person(browser, st);
    await page.goto(`${VENDOR}/signin/contoso`);
    await page.locator("#approval-note").waitFor();
    await page.shot(`${who}-connect`);
    await page.click("#start-sign-in");
    await accordSignIn(page, upn, `${who}-accord-sign-in`);
    await page.getByRole("heading", { name: "Approval required" }).waitFor();
    await page.fill("#reason", reason);
    await page.shot(`${who}-approval-required`);
    await page.getByRole("button", { name: "Request approval" }).click();
    await page.getByRole("heading", { name: "Request sent" }).waitFor();
    await page.shot(`${who}-request-sent`);
    return page;
  }

  /** The administrator opens Meeting Insights' pending request in the admin center. */
  async function adminOpensRequest(st) {
    const admin = await person(browser, st);
    await admin.goto(`${ACCORD}/portal/signin?return_to=/admin/requests`);
    await accordSignIn(admin, "admin@contoso.test", "admin-sign-in");
    await waitUrl(admin, `${ACCORD}/admin/requests**`);
    await admin.shot("admin-requests");
    await admin.locator("main table a", { hasText: "Meeting Insights" }).first().click();
    return admin;
  }

  it("a reviewer denies a request with a justification; the user may ask again", async () => {
    const st = story("option2-deny");
    await userConsentMode(st);
    const carol = await requestApproval(st, "carol@contoso.test", "Carol would like her calendar in Meeting Insights.");
    const admin = await adminOpensRequest(st);
    assert.match(await mainText(admin), /Carol would like her calendar/);
    const deny = admin.locator("form", { has: admin.getByRole("button", { name: "Deny" }) });
    await deny.locator("textarea").fill("Not before the security review.");
    await admin.shot("admin-deny");
    await deny.getByRole("button", { name: "Deny" }).click();
    await admin.waitForLoadState();
    const text = await mainText(admin);
    assert.match(text, /Denied/);
    assert.match(text, /Not before the security review/);
    await admin.shot("admin-denied");
    await admin.context().close();

    // Carol tries again: the app is still not consented, so Accord asks for approval again.
    await carol.goto(`${VENDOR}/signin/contoso`);
    await carol.click("#try-again");
    if (await carol.locator("#login").count()) await accordSignIn(carol, "carol@contoso.test", "carol-accord-sign-in-again");
    await carol.getByRole("heading", { name: "Approval required" }).waitFor();
    await carol.shot("carol-asks-again");
    await carol.context().close();
  });

  it("a user requests approval, the admin approves in the admin center, the user retries and gets in", async () => {
    const st = story("option2");
    await userConsentMode(st);
    const bob = await requestApproval(st, "bob@contoso.test", "I need my meetings in Meeting Insights for the weekly pipeline review.");

    // Back at Meeting Insights, the sign-in page offers Try again.
    await bob.goto(`${VENDOR}/signin/contoso`);
    await bob.locator("#try-again").waitFor();
    await bob.shot("bob-waiting");

    // The administrator approves in the admin center.
    const admin = await adminOpensRequest(st);
    assert.match(await mainText(admin), /weekly pipeline review/);
    await admin.shot("admin-request");
    await admin.getByRole("button", { name: "Approve" }).first().click();
    await admin.waitForLoadState();
    await admin.shot("admin-approved");
    assert.match(await mainText(admin), /approved/i);

    // Bob tries again and gets in without a prompt.
    await bob.goto(`${VENDOR}/signin/contoso`);
    await bob.click("#try-again");
    if (await bob.locator("#login").count()) await accordSignIn(bob, "bob@contoso.test", "bob-accord-sign-in-again");
    await waitUrl(bob, `${VENDOR}/meetings/contoso`);
    const row = bob.locator('#users [data-upn="bob@contoso.test"]');
    assert.match(await row.innerText(), /own connection|connected/i);
    assert.ok((await bob.locator("#meetings tr.meeting").count()) > 0, "Bob's meetings are listed");
    await bob.shot("bob-meetings");
  });
});
