// Option 2, "a permitted user consents", then My Apps, in a fresh Accord + Meeting Insights pair.
//
// No demo tenant lets an ordinary user consent to Meeting Insights: Contoso's "low" setting
// only covers low-impact permissions of verified or same-tenant apps, and Fabrikam has already
// consented for everyone. So the Contoso administrator changes the user consent setting to
// "all" in the admin center (Consent and permissions) first, in this run's own servers; the
// demo world itself stays as docs/demo.md describes it. Then:
//   support switches Contoso to User consent; Alice (an ordinary user) connects her calendar,
//   accepts Accord's consent page for herself and lands on her meetings; the administrator
//   assigns Alice's group to the app; Alice's My Apps shows the app and why (her own consent,
//   the group assignment) and the permissions it holds; she revokes her consent (the
//   confirmation box is required), and Meeting Insights' next sync shows her connection revoked.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  ACCORD,
  VENDOR,
  accordSignIn,
  launchBrowser,
  mainText,
  person,
  portal,
  setInstanceMode,
  startPair,
  story,
  waitUrl,
} from "../support.mjs";

const ALICE = "alice@contoso.test";

describe("option 2: a permitted user consents; My Apps", { concurrency: 1 }, () => {
  let pair, browser, admin, alice;

  before(async () => {
    pair = await startPair("option2-user-consent");
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await pair?.stop();
  });

  it("an ordinary user whom the consent policy allows consents for herself and gets in", async () => {
    const st = story("option2-user-consent");
    await setInstanceMode(browser, st, "contoso", "user_consent");

    // The administrator lets users consent to apps (Consent and permissions > User consent).
    admin = await portal(browser, st, "admin@contoso.test", "/admin/consent");
    await admin.locator("input[name=user_consent][value=all]").check();
    await admin.shot("admin-user-consent-all");
    await admin.getByRole("button", { name: "Save" }).click();
    await admin.waitForLoadState();
    await admin.goto(`${ACCORD}/admin/consent`);
    assert.ok(await admin.locator("input[name=user_consent][value=all]").isChecked(), "the setting was saved");

    alice = await person(browser, st);
    await alice.goto(`${VENDOR}/signin/contoso`);
    await alice.shot("alice-connect");
    await alice.click("#start-sign-in");
    await accordSignIn(alice, ALICE, "alice-accord-sign-in");
    await alice.getByRole("heading", { name: "Permissions requested" }).waitFor();
    const prompt = await mainText(alice);
    assert.match(prompt, /Meeting Insights/);
    assert.match(prompt, /calendars/i);
    // For herself only: an ordinary user is not offered consent for the organisation.
    assert.equal(await alice.locator("input[name=org]").count(), 0, "no 'on behalf of your organisation' for a user");
    await alice.shot("alice-consent");
    await Promise.all([alice.waitForURL(`${VENDOR}/**`), alice.getByRole("button", { name: "Accept" }).click()]);

    await waitUrl(alice, `${VENDOR}/meetings/contoso`);
    const row = alice.locator(`#users [data-upn="${ALICE}"]`);
    assert.match(await row.innerText(), /own connection|connected/i);
    assert.ok((await alice.locator("#meetings tr.meeting").count()) > 0, "Alice's meetings are listed");
    assert.match(await alice.locator("#meetings").innerText(), /Weekly sales pipeline review/);
    await alice.shot("alice-meetings");
  });

  it("My Apps: the app and why, its permissions, revoking one's own consent", async () => {
    assert.ok(admin && alice, "the consent step ran");
    const st = story("myapps");
    admin.st = st;
    alice.st = st;

    // The administrator assigns Sales Leads (Alice's group) to Meeting Insights.
    await admin.goto(`${ACCORD}/admin/enterprise-apps`);
    await admin.locator("main table a", { hasText: "Meeting Insights" }).click();
    await admin.locator("ul.tabs").getByRole("link", { name: "Users and groups" }).click();
    await admin.getByRole("link", { name: "+ Add user/group" }).click();
    await admin.locator("label.choice", { hasText: "Sales Leads" }).first().locator("input[name=principal]").check();
    await admin.shot("admin-assign-sales-leads");
    await admin.getByRole("button", { name: "Assign" }).click();
    await admin.waitForLoadState();
    assert.match(await admin.locator("main table").first().innerText(), /Sales Leads/);

    // Alice's My Apps (her Accord session from the sign-in carries over).
    await alice.goto(`${ACCORD}/myapps`);
    if (await alice.locator("#login").count()) await accordSignIn(alice, ALICE, "alice-portal-sign-in");
    await waitUrl(alice, `${ACCORD}/myapps**`);
    const entry = alice.locator("article.app-entry", { hasText: "Meeting Insights" });
    let text = (await entry.innerText()).replace(/\s+/g, " ");
    assert.match(text, /You consented on/, text);
    assert.match(text, /Assigned to your group Sales Leads/, text);
    assert.doesNotMatch(text, /organisation's administrator consented/, text);
    assert.match(text, /Unverified publisher/, text);
    // Exactly what Meeting Insights asked for at sign-in (dynamic consent), not everything it
    // lists in its registration.
    for (const permission of ["Calendars.Read", "User.Read", "offline_access"]) {
      assert.match(text, new RegExp(permission.replace(".", "\\.")), `${permission} held: ${text}`);
    }
    assert.doesNotMatch(text, /OnlineMeetings\.Read/, text);
    const held = entry.locator("table.grid tbody tr", { hasText: "Calendars.Read" });
    assert.match(await held.innerText(), /\bYou\b/, "granted by Alice herself");
    await alice.shot("alice-my-apps");

    // Revoke: without the confirmation the browser does not send the form.
    const revoke = entry.locator("form.revoke");
    await revoke.getByRole("button", { name: "Revoke my consent" }).click();
    assert.equal(await revoke.locator("input[name=confirm]").evaluate((el) => el.validity.valueMissing), true);
    await waitUrl(alice, `${ACCORD}/myapps`);
    assert.match((await entry.innerText()).replace(/\s+/g, " "), /You consented on/, "nothing revoked yet");
    await revoke.locator("input[name=confirm]").check();
    await alice.shot("alice-revoke-confirm");
    await revoke.getByRole("button", { name: "Revoke my consent" }).click();
    await alice.waitForLoadState();
    await alice.locator("p.notice").waitFor();
    // Still assigned, so still listed, but holding nothing for her and asking again next time.
    text = (await entry.innerText()).replace(/\s+/g, " ");
    assert.doesNotMatch(text, /You consented on/, text);
    assert.match(text, /Assigned to your group Sales Leads/, text);
    assert.doesNotMatch(text, /Calendars\.Read/, text);
    assert.equal(await entry.locator("form.revoke").count(), 0);
    await alice.shot("alice-revoked");

    // Meeting Insights' next sync meets the revoked consent.
    await alice.goto(`${VENDOR}/meetings/contoso`);
    await alice.click("#sync-now");
    await alice.waitForLoadState();
    await alice.goto(`${VENDOR}/meetings/contoso`);
    const row = alice.locator(`#users [data-upn="${ALICE}"]`);
    assert.match(await row.getAttribute("data-state"), /revoked/i);
    assert.match(await row.innerText(), /AADSTS65001/);
    await alice.shot("alice-vendor-after-sync");
  });
});
