// Option 1 of the guide (pre-authorization), then "for some users or groups" (assignment
// required), then revocation, in one Accord + Meeting Insights pair, in this order.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ACCORD, CLIENT_ID, CONTOSO_TENANT, VENDOR, accordSignIn, launchBrowser, mainText, person, startPair, story, waitUrl } from "../support.mjs";

describe("option 1: pre-authorization", { concurrency: 1 }, () => {
  let pair, browser, admin, alice;

  before(async () => {
    pair = await startPair("option1");
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await pair?.stop();
  });

  /** A user signs in at /signin/contoso; resolves on the page Meeting Insights ends on. */
  async function userSignsIn(st, upn) {
    const page = await person(browser, st);
    await page.goto(`${VENDOR}/signin/contoso`);
    await page.shot(`${upn.split("@")[0]}-vendor-sign-in`);
    await page.click("#start-sign-in");
    await accordSignIn(page, upn, `${upn.split("@")[0]}-accord-sign-in`);
    return page;
  }

  it("admin consent from the onboarding page, then a user gets in with no prompt", async () => {
    const st = story("option1");
    admin = await person(browser, st);
    await admin.goto(`${VENDOR}/onboarding/contoso`);
    assert.match(await admin.locator("#client-id").innerText(), new RegExp(CLIENT_ID));
    assert.match(await admin.locator("#connection-status").innerText(), /not connected/i);
    await admin.shot("onboarding");

    const href = await admin.locator("#admin-consent-link").getAttribute("href");
    assert.ok(href.startsWith(`${ACCORD}/organizations/v2.0/adminconsent?`), href);
    await admin.click("#admin-consent-link");
    await accordSignIn(admin, "admin@contoso.test", "admin-sign-in");

    await admin.getByRole("heading", { name: "Permissions requested" }).waitFor();
    assert.match(await mainText(admin), /Accept for your organisation: Contoso/);
    await admin.shot("admin-consent");
    await Promise.all([admin.waitForURL(`${VENDOR}/admin-consent/callback?**`), admin.getByRole("button", { name: "Accept" }).click()]);

    assert.equal(await admin.locator("#result-title").innerText(), "Connected");
    assert.equal(await admin.locator("#consent-result").getAttribute("data-result"), "connected");
    assert.equal(await admin.locator("#tenant-id").innerText(), CONTOSO_TENANT);
    await admin.shot("connected");

    alice = await userSignsIn(st, "alice@contoso.test");
    // No consent prompt: Accord sends Alice straight back to the meetings page.
    await waitUrl(alice, `${VENDOR}/meetings/contoso`);
    assert.equal(await alice.locator("#tenant-status").getAttribute("data-state"), "admin_consent");
    const rows = alice.locator("#meetings tr.meeting");
    assert.ok((await rows.count()) > 0, "the meetings page lists meetings");
    assert.match(await alice.locator("#meetings").innerText(), /Weekly sales pipeline review/);
    await alice.shot("alice-meetings");
  });

  it("for some users or groups: assignment required, an assigned user gets in, an unassigned one gets AADSTS50105", async () => {
    assert.ok(admin, "the admin-consent step ran");
    const st = story("subset");
    admin.st = st;
    // The admin's Accord session from the consent step carries into the admin center; sign
    // in through the portal when it does not.
    await admin.goto(`${ACCORD}/portal/signin?return_to=/admin`);
    if (await admin.locator("#login").count()) await accordSignIn(admin, "admin@contoso.test", "admin-sign-in");
    await waitUrl(admin, `${ACCORD}/admin`);
    await admin.shot("admin-center");

    await admin.getByRole("link", { name: "Enterprise applications" }).first().click();
    await admin.locator("main table a", { hasText: "Meeting Insights" }).click();
    await admin.shot("enterprise-app");
    const appUrl = admin.url();

    await admin.locator("ul.tabs").getByRole("link", { name: "Properties" }).click();
    await admin.locator('input[name=assignment_required][value=yes]').check();
    await admin.shot("assignment-required");
    await admin.getByRole("button", { name: "Save" }).click();
    // Nobody is assigned yet: the page says everyone is locked out, and offers to assign the
    // administrator (issue 18).
    await admin.locator("#nobody-assigned").waitFor();
    assert.match(await admin.locator("#nobody-assigned").innerText(), /Nobody can sign in to Meeting Insights/);
    await admin.shot("nobody-assigned");
    await admin.locator("#assign-me").click();
    await admin.goto(appUrl);
    assert.match(await mainText(admin), /Assignment required Yes/);

    const assign = async (name) => {
      await admin.goto(`${appUrl}/users-and-groups`);
      await admin.getByRole("link", { name: "+ Add user/group" }).click();
      await admin.locator("label.choice", { hasText: name }).first().locator("input[name=principal]").check();
      await admin.shot(`assign-${name.toLowerCase().replace(/\W+/g, "-")}`);
      await admin.getByRole("button", { name: "Assign" }).click();
    };
    await assign("Sales"); // Bob, Carol and, through Sales Leads, Alice
    await admin.goto(`${appUrl}/users-and-groups`);
    const assigned = await admin.locator("main table").first().innerText();
    assert.match(assigned, /Contoso Administrator/);
    assert.match(assigned, /Sales/);
    await admin.shot("users-and-groups");

    const bob = await userSignsIn(st, "bob@contoso.test");
    await waitUrl(bob, `${VENDOR}/meetings/contoso`);
    await bob.shot("bob-meetings");
    await bob.context().close();

    const dave = await userSignsIn(st, "dave@contoso.test");
    // Accord, like Entra, shows the error on its own page (it does not redirect back).
    await dave.getByText("AADSTS50105").first().waitFor();
    assert.match(await dave.locator("body").innerText(), /dave@contoso\.test' is blocked/);
    await dave.shot("dave-50105");
    await dave.context().close();
  });

  it("revocation: the admin revokes in the admin center; Sync now shows the connection revoked", async () => {
    assert.ok(admin, "the admin-consent step ran");
    const st = story("revoke");
    admin.st = st;
    await admin.goto(`${ACCORD}/admin/enterprise-apps?q=${CLIENT_ID}`);
    await admin.locator("main table a", { hasText: "Meeting Insights" }).click();
    await admin.locator("ul.tabs").getByRole("link", { name: "Permissions" }).click();
    await admin.shot("permissions");
    // Delegated grant for all users (Revoke), then each application permission (Remove).
    for (;;) {
      const link = admin.locator("main td.actions a", { hasText: /^(Revoke|Remove)$/ }).first();
      if (!(await link.count())) break;
      await link.click();
      const confirm = admin.locator("main form button[type=submit]", { hasText: /Revoke|Remove/ });
      if (await confirm.count()) {
        await admin.shot("confirm-revoke");
        await confirm.first().click();
      }
      await admin.waitForLoadState();
    }
    await admin.shot("revoked");

    // Alice is still signed in to Meeting Insights from the first story.
    alice.st = st;
    await alice.goto(`${VENDOR}/meetings/contoso`);
    await alice.click("#sync-now");
    await alice.waitForLoadState();
    await alice.goto(`${VENDOR}/meetings/contoso`);
    await alice.shot("vendor-after-sync");
    const row = alice.locator('#users [data-upn="alice@contoso.test"]');
    assert.match(await row.getAttribute("data-state"), /revoked/i);
    assert.match(await row.innerText(), /AADSTS65001/);
    assert.match(await alice.locator("#my-connection").innerText(), /no longer connected/i);
    // Alice's own meetings are gone. (Other people's may still be listed: an app-only token the
    // app obtained before the application permissions were removed stays valid until it
    // expires, as in Entra, so the organisation-wide sync can go on until then.)
    const rows = alice.locator("#meetings tr.meeting", { hasText: "alice@contoso.test" });
    assert.equal(await rows.count(), 0, "Alice's meetings are no longer shown");
  });
});
