// Option 2 of the guide (user consent with approval requests), in a fresh Accord + Meeting
// Insights pair: Contoso has not given admin consent, users may consent only to low-impact
// permissions, and the admin-consent request workflow is on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  ACCORD,
  VENDOR,
  accordSignIn,
  launchBrowser,
  mainText,
  portal,
  requestApproval,
  setInstanceMode,
  startPair,
  story,
  waitUrl,
} from "../support.mjs";

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
    await setInstanceMode(browser, st, "contoso", "user_consent");
    modeSet = true;
  }

  /** The administrator opens Meeting Insights' pending request in the admin center. */
  async function adminOpensRequest(st) {
    const admin = await portal(browser, st, "admin@contoso.test", "/admin/requests");
    await admin.shot("admin-requests");
    await admin.locator("main table a", { hasText: "Meeting Insights" }).first().click();
    return admin;
  }

  it("a reviewer denies a request with a justification; the user may ask again", async () => {
    const st = story("option2-deny");
    await userConsentMode(st);
    const carol = await requestApproval(browser, st, "carol@contoso.test", "Carol would like her calendar in Meeting Insights.");
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
    await carol.fill("#reason", "Carol again: the security review is done.");
    await carol.getByRole("button", { name: "Request approval" }).click();
    await carol.getByRole("heading", { name: "Request sent" }).waitFor();

    // My Apps: the new request pending, the denied one in the past with the reviewer's reason.
    await carol.goto(`${ACCORD}/myapps`);
    if (await carol.locator("#login").count()) await accordSignIn(carol, "carol@contoso.test", "carol-portal-sign-in");
    await waitUrl(carol, `${ACCORD}/myapps**`);
    const requests = carol.locator("section", { has: carol.locator("#requests-heading") });
    const pending = requests.locator("table").first();
    const past = requests.locator("table").nth(1);
    assert.match(await pending.innerText(), /Meeting Insights[\s\S]*Carol again: the security review is done/);
    assert.doesNotMatch(await pending.innerText(), /Carol would like/);
    const pastText = await past.innerText();
    assert.match(pastText, /Meeting Insights/);
    assert.match(pastText, /Denied/);
    assert.match(pastText, /Not before the security review/);
    assert.match(pastText, /Carol would like her calendar/);
    // Nothing was consented, so she has no apps.
    assert.match(await mainText(carol), /You have no apps yet/);
    await carol.shot("carol-my-apps-requests");
    await carol.context().close();
  });

  it("a user requests approval, the admin approves in the admin center, the user retries and gets in", async () => {
    const st = story("option2");
    await userConsentMode(st);
    const bob = await requestApproval(browser, st, "bob@contoso.test", "I need my meetings in Meeting Insights for the weekly pipeline review.");

    // Back at Meeting Insights, the sign-in page offers Try again.
    await bob.goto(`${VENDOR}/signin/contoso`);
    await bob.locator("#try-again").waitFor();
    await bob.shot("bob-waiting");

    // The administrator approves in the admin center.
    const admin = await adminOpensRequest(st);
    assert.match(await mainText(admin), /weekly pipeline review/);
    await admin.shot("admin-request");
    // Approve says what it grants, for whom, and needs its box ticked (issue 18).
    assert.match(await admin.locator("#approve-summary").innerText(), /every user of Contoso/);
    await admin.locator('form[action$="/approve"] input[name=confirm]').check();
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

    // My Apps: Meeting Insights, because the organisation consented (the approval), with the
    // delegated permissions it holds; nothing of Bob's own to revoke; his request is past.
    await bob.goto(`${ACCORD}/myapps`);
    await waitUrl(bob, `${ACCORD}/myapps**`);
    const entry = bob.locator("article.app-entry", { hasText: "Meeting Insights" });
    const text = (await entry.innerText()).replace(/\s+/g, " ");
    assert.match(text, /organi[sz]ation/i, text);
    assert.match(text, /Calendars\.Read/, text);
    assert.match(text, /User\.Read/, text);
    assert.equal(await entry.locator("form.revoke").count(), 0, "an organisation's consent is not the user's to revoke");
    const past = bob.locator("section", { has: bob.locator("#requests-heading") }).locator("table").last();
    assert.match(await past.innerText(), /Meeting Insights[\s\S]*Approved/i);
    await bob.shot("bob-my-apps");
  });
});
