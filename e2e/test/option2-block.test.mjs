// Option 2, the block path, in its own fresh Accord + Meeting Insights pair: a reviewer blocks
// the request, which disables Meeting Insights in Contoso, and the user cannot get in.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ACCORD, SUPPORT_PASSWORD, VENDOR, accordSignIn, launchBrowser, mainText, person, startPair, story, waitUrl } from "../support.mjs";

describe("option 2: a blocked request", () => {
  let pair, browser;

  before(async () => {
    pair = await startPair("option2-block");
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await pair?.stop();
  });

  it("the reviewer blocks the app; the user's retry is refused", async () => {
    const st = story("option2-block");
    const support = await person(browser, st);
    await support.goto(`${VENDOR}/support`);
    await support.fill("#password", SUPPORT_PASSWORD);
    await support.click("#support-login-button");
    await support.selectOption("#mode-contoso", "user_consent");
    await support.click("#save-mode-contoso");
    assert.equal(await support.locator("#instance-contoso").getAttribute("data-mode"), "user_consent");
    await support.context().close();

    const dave = await person(browser, st);
    await dave.goto(`${VENDOR}/signin/contoso`);
    await dave.click("#start-sign-in");
    await accordSignIn(dave, "dave@contoso.test", "dave-accord-sign-in");
    await dave.getByRole("heading", { name: "Approval required" }).waitFor();
    await dave.fill("#reason", "Engineering wants meeting stats.");
    await dave.getByRole("button", { name: "Request approval" }).click();
    await dave.getByRole("heading", { name: "Request sent" }).waitFor();
    await dave.shot("dave-request-sent");

    const admin = await person(browser, st);
    await admin.goto(`${ACCORD}/portal/signin?return_to=/admin/requests`);
    await accordSignIn(admin, "admin@contoso.test", "admin-sign-in");
    await waitUrl(admin, `${ACCORD}/admin/requests**`);
    await admin.locator("main table a", { hasText: "Meeting Insights" }).first().click();
    const block = admin.locator("form", { has: admin.getByRole("button", { name: "Block" }) });
    await block.locator("textarea").fill("This app is not approved for Contoso.");
    await block.locator("input[type=checkbox]").check();
    await admin.shot("admin-block");
    await block.getByRole("button", { name: "Block" }).click();
    await admin.waitForLoadState();
    const text = await mainText(admin);
    assert.match(text, /Blocked/);
    await admin.shot("admin-blocked");

    // Dave tries again: Meeting Insights is disabled in Contoso, so Accord refuses the sign-in.
    await dave.goto(`${VENDOR}/signin/contoso`);
    await dave.click("#try-again");
    if (await dave.locator("#login").count()) await accordSignIn(dave, "dave@contoso.test", "dave-accord-sign-in-again");
    await dave.getByText("AADSTS7000112").first().waitFor();
    const body = await dave.locator("body").innerText();
    assert.match(body, /is disabled/);
    assert.doesNotMatch(body, /Approval required/);
    await dave.shot("dave-refused");
  });
});
