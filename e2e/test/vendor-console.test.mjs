// The vendor's side of Accord's extensions, and a customer's time-bound consent: Accord alone
// (the demo world). The vendor's administrator reads Meeting Insights' consent webhooks and
// consent coverage; Contoso's administrator consents through the admin-consent link, then
// grants admin consent and assigns a user "for 90 days" in the admin center; the vendor adds a
// permission to the registration and coverage shows Contoso lacking it, with the link to send.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";

import { ACCORD, CLIENT_ID, CONTOSO_TENANT, accordSignIn, launchBrowser, mainText, portal, startAccord, story, waitUrl } from "../support.mjs";

describe("the vendor's console and time-bound consent", { concurrency: 1 }, () => {
  let accord, browser, vendor, contoso;

  // Meeting Insights does not run here: its admin-consent callback is this little server,
  // which the demo world's redirect URIs name (`--var vendor_url=http://localhost:PORT`).
  let callback;
  const callbacks = [];

  before(async () => {
    callback = http.createServer((req, res) => {
      callbacks.push(req.url);
      res.writeHead(200, { "content-type": "text/plain" }).end("Meeting Insights' admin-consent callback");
    });
    await new Promise((r) => callback.listen(0, "127.0.0.1", r));
    const vendorUrl = `http://localhost:${callback.address().port}`;
    accord = await startAccord("vendor-console", ["--var", `vendor_url=${vendorUrl}`]);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await accord?.stop();
    callback?.close();
  });

  it("the registration's consent webhooks and coverage before any customer consented", async () => {
    const st = story("vendor-console");
    vendor = await portal(browser, st, "admin@vendor.test", `/admin/app-registrations/${CLIENT_ID}/webhooks`);
    assert.match(await mainText(vendor), /\/webhooks\/consent/);
    await vendor.shot("consent-webhooks");
    await vendor.locator("ul.tabs").getByRole("link", { name: "Consent coverage" }).click();
    await waitUrl(vendor, `${ACCORD}/admin/app-registrations/${CLIENT_ID}/coverage`);
    assert.equal(await vendor.locator(`#tenant-${CONTOSO_TENANT}`).count(), 0, "Contoso never consented");
    await vendor.shot("coverage-before");
  });

  it("Contoso consents, then grants admin consent and an assignment for 90 days", async () => {
    const st = story("time-bound");
    contoso = await portal(browser, st, "admin@contoso.test", "/admin");
    const redirect = `http://localhost:${callback.address().port}/admin-consent/callback`;
    const query = new URLSearchParams({
      client_id: CLIENT_ID,
      scope: "https://graph.microsoft.com/.default",
      redirect_uri: redirect,
      state: "e2e",
    });
    await contoso.goto(`${ACCORD}/organizations/v2.0/adminconsent?${query}`);
    await contoso.getByRole("heading", { name: "Permissions requested" }).waitFor();
    await Promise.all([contoso.waitForURL(`${redirect}?**`), contoso.getByRole("button", { name: "Accept" }).click()]);
    // (The browser may also ask the little server for /favicon.ico.)
    const landed = callbacks.find((u) => u.startsWith("/admin-consent/callback?"));
    assert.match(landed ?? "", /admin_consent=True/, callbacks.join(" "));

    await contoso.goto(`${ACCORD}/admin/enterprise-apps?q=${CLIENT_ID}`);
    await contoso.locator("main table a", { hasText: "Meeting Insights" }).click();
    const appUrl = contoso.url();
    await contoso.goto(`${appUrl}/permissions/admin-consent`);
    await contoso.getByRole("group", { name: "How long the consent lasts" }).getByLabel("90 days").check();
    await contoso.shot("admin-consent-for-90-days");
    await contoso.getByRole("button", { name: "Accept" }).click();
    await waitUrl(contoso, `${appUrl}/permissions?done=**`);
    const granted = await contoso.locator("main table").first().innerText();
    assert.doesNotMatch(granted, /—/, "the grant shows its end");
    assert.match(granted, /\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    await contoso.shot("permissions-with-ends");

    await contoso.goto(`${appUrl}/users-and-groups/add?q=alice`);
    await contoso.locator("label.choice", { hasText: "Alice" }).first().locator("input[name=principal]").check();
    await contoso.getByRole("group", { name: "How long the assignments last" }).getByLabel("90 days").check();
    await contoso.shot("assign-alice-for-90-days");
    await contoso.getByRole("button", { name: "Assign" }).click();
    await waitUrl(contoso, `${appUrl}/users-and-groups?done=**`);
    const row = await contoso.locator("main table tr", { hasText: "alice@contoso.test" }).innerText();
    assert.match(row, /UTC\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/, row);
    await contoso.shot("users-and-groups-with-ends");
  });

  it("the vendor adds a permission: coverage shows what Contoso now lacks, with the link", async () => {
    assert.ok(vendor && contoso, "the earlier steps ran");
    vendor.st = story("coverage");
    await vendor.goto(`${ACCORD}/admin/app-registrations/${CLIENT_ID}/coverage`);
    const panel = vendor.locator(`#tenant-${CONTOSO_TENANT}`);
    assert.equal(await panel.getAttribute("data-missing"), "0");
    await vendor.shot("coverage-all-granted");

    await vendor.locator("ul.tabs").getByRole("link", { name: "API permissions" }).click();
    await vendor.locator("select#permission").selectOption("delegated:Calendars.ReadWrite");
    await vendor.locator("form", { has: vendor.locator("select#permission") }).getByRole("button").click();
    await vendor.goto(`${ACCORD}/admin/app-registrations/${CLIENT_ID}/coverage`);
    assert.equal(await panel.getAttribute("data-missing"), "1");
    assert.match(await panel.innerText(), /Calendars\.ReadWrite/);
    const link = await panel.getByRole("textbox", { name: /Admin consent link/ }).inputValue();
    assert.ok(link.startsWith(`${ACCORD}/${CONTOSO_TENANT}/v2.0/adminconsent?client_id=${CLIENT_ID}`), link);
    assert.match(decodeURIComponent(link), /Calendars\.ReadWrite/);
    await vendor.shot("coverage-missing");

    // The delivery log: the change is queued for the webhook within a second or two (the demo
    // world's endpoint is not running here, so it shows as retrying).
    await vendor.locator("ul.tabs").getByRole("link", { name: "Consent webhooks" }).click();
    const deadline = Date.now() + 20_000;
    while (!(await vendor.locator('tr[data-event="app.permissions_changed"]').count())) {
      assert.ok(Date.now() < deadline, `no app.permissions_changed delivery: ${await mainText(vendor)}`);
      await new Promise((r) => setTimeout(r, 500));
      await vendor.reload();
    }
    await vendor.shot("webhook-deliveries");
  });
});
