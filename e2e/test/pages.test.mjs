// Every page a person meets, at 1280 px and at 390 px (a phone): the page never scrolls
// sideways, axe-core finds no serious or critical accessibility violation, and a screenshot of
// each lands in screenshots/gallery/<page>-<width>.jpg (scripts/gallery copies them into
// docs/screenshots/gallery/ for docs/gallery.md). The consent and request pages are also
// walked with the keyboard alone.
//
// axe-core is injected into the page, which Accord's Content-Security-Policy (one hashed inline
// script) would refuse: the contexts of this story bypass CSP. Every other story runs with it.
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { ACCORD, HERE, VENDOR, accordSignIn, launchBrowser, person, setInstanceMode, startPair, story, waitUrl } from "../support.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const GALLERY = path.join(HERE, "screenshots", "gallery");
const WIDTHS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];
/** What counts as a failure (axe's own impact levels: minor, moderate, serious, critical). */
const BLOCKING = new Set(["serious", "critical"]);

describe("every page at 1280 px and 390 px, accessible", { concurrency: 1 }, () => {
  let pair, browser;
  const problems = [];
  const minor = [];
  const shown = [];

  before(async () => {
    pair = await startPair("pages");
    browser = await launchBrowser();
    fs.mkdirSync(GALLERY, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await pair?.stop();
  });

  const visitor = (st) => person(browser, st, { bypassCSP: true });

  /** The page as it is now, at each width: overflow, axe-core, a screenshot. */
  async function check(page, name) {
    await page.waitForLoadState("load");
    for (const size of WIDTHS) {
      await page.setViewportSize(size);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const overflow = await page.evaluate(() => {
        const width = window.innerWidth;
        if (document.documentElement.scrollWidth <= width + 1) return null;
        const wide = [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > width + 1)
          .slice(-3)
          .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className ? "." + String(e.className).replace(/ /g, ".") : ""}`);
        return `${document.documentElement.scrollWidth} px wide (${wide.join(", ")})`;
      });
      if (overflow) problems.push(`${name} at ${size.width} px scrolls sideways: ${overflow}`);
      if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.addScriptTag({ path: AXE });
      const violations = await page.evaluate(async () => {
        const r = await window.axe.run(document);
        const violations = r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
        return { violations, passed: r.passes.length };
      });
      // A run that checked nothing would hide every violation.
      if (!(violations.passed > 10)) problems.push(`${name} at ${size.width} px: axe-core checked only ${violations.passed} rules`);
      for (const v of violations.violations) {
        const line = `${name} at ${size.width} px: ${v.impact} ${v.id} (${v.help}) at ${v.targets.join(" | ")}`;
        (BLOCKING.has(v.impact) ? problems : minor).push(line);
      }
      await page.screenshot({ path: path.join(GALLERY, `${name}-${size.width}.jpg`), type: "jpeg", quality: 60 });
    }
    await page.setViewportSize(WIDTHS[0]);
    shown.push(name);
  }

  /** Presses Tab until the focused element matches `selector`: the keyboard reaches it. */
  async function tabTo(page, selector, limit = 40) {
    for (let i = 0; i < limit; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    }
    assert.fail(`${selector} is not reachable with Tab on ${page.url()}`);
  }

  /** Opens each link of the admin center the page leads to, by path. */
  async function visit(page, url, name) {
    await page.goto(url);
    await check(page, name);
  }

  /** The href of the first link in `main table` (an object of a list). */
  async function firstListed(page, url) {
    await page.goto(url);
    const href = await page.locator("main table tbody a").first().getAttribute("href");
    return new URL(href, url).toString();
  }

  it("pages before signing in", async () => {
    const st = story("pages-anonymous");
    const page = await visitor(st);
    await visit(page, `${VENDOR}/`, "vendor-home");
    await visit(page, `${VENDOR}/technical-guide`, "vendor-technical-guide");
    await visit(page, `${VENDOR}/onboarding/contoso`, "vendor-onboarding");
    await visit(page, `${VENDOR}/signin/contoso`, "vendor-sign-in");
    await visit(page, `${VENDOR}/support`, "vendor-support-sign-in");
    await visit(page, `${ACCORD}/portal/signin?return_to=/admin`, "accord-sign-in");
    const unknownApp = new URLSearchParams({
      client_id: "00000000-0000-4000-8000-0000000000aa",
      response_type: "code",
      redirect_uri: "https://app.example/cb",
      scope: "openid",
    });
    await visit(page, `${ACCORD}/common/oauth2/v2.0/authorize?${unknownApp}`, "accord-error");
    await page.context().close();
  });

  it("a user asks for approval with the keyboard alone; an administrator consents with it", async () => {
    const st = story("pages-consent");
    await setInstanceMode(browser, st, "contoso", "user_consent");
    const alice = await visitor(st);
    await alice.goto(`${VENDOR}/signin/contoso`);
    await alice.click("#start-sign-in");
    await accordSignIn(alice, "alice@contoso.test", "alice-sign-in");
    await alice.getByRole("heading", { name: "Approval required" }).waitFor();
    await check(alice, "approval-required");
    await tabTo(alice, "#reason");
    await alice.keyboard.type("My calendar in Meeting Insights, please.");
    await tabTo(alice, "button[type=submit]");
    await alice.keyboard.press("Enter");
    await alice.getByRole("heading", { name: "Request sent" }).waitFor();
    await check(alice, "request-sent");
    await visit(alice, `${ACCORD}/myapps`, "my-apps");
    // Contoso Expenses asks only for low-impact permissions: Alice consents herself.
    const expenses = new URLSearchParams({
      client_id: "5e7c1a9d-3f2b-4c6e-8a14-9b0d2e4f6a71",
      response_type: "code",
      redirect_uri: "https://localhost:9444/callback",
      scope: "openid User.Read",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
    });
    await alice.goto(`${ACCORD}/contoso.test/oauth2/v2.0/authorize?${expenses}`);
    await alice.getByRole("heading", { name: "Permissions requested" }).waitFor();
    await check(alice, "user-consent");
    await visit(alice, `${ACCORD}/devicelogin`, "device-code-entry");

    // The administrator sees the request, then grants consent from the onboarding page.
    const admin = await visitor(st);
    await admin.goto(`${ACCORD}/portal/signin?return_to=/admin/requests`);
    await accordSignIn(admin, "admin@contoso.test", "admin-sign-in");
    await waitUrl(admin, `${ACCORD}/admin/requests**`);
    await check(admin, "admin-requests");
    await admin.locator("main table a", { hasText: "Meeting Insights" }).first().click();
    await admin.getByRole("heading", { name: "Review" }).waitFor();
    await check(admin, "admin-request");
    await admin.goto(`${VENDOR}/onboarding/contoso`);
    await admin.click("#admin-consent-link");
    if (await admin.locator("#login").count()) await accordSignIn(admin, "admin@contoso.test", "admin-sign-in");
    await admin.getByRole("heading", { name: "Permissions requested" }).waitFor();
    await check(admin, "admin-consent");
    await tabTo(admin, "button[type=submit][value=accept]");
    assert.match(await admin.evaluate(() => document.activeElement.textContent), /Accept/);
    await admin.keyboard.press("Enter");
    await waitUrl(admin, `${VENDOR}/admin-consent/callback?**`);
    await check(admin, "vendor-connected");
    await admin.context().close();

    await alice.goto(`${VENDOR}/signin/contoso`);
    await alice.click("#start-sign-in");
    await waitUrl(alice, `${VENDOR}/meetings/contoso`);
    await check(alice, "vendor-meetings");
    await visit(alice, `${ACCORD}/common/oauth2/v2.0/logout`, "signed-out");
    await alice.context().close();
  });

  it("the admin center", async () => {
    const st = story("pages-admin");
    const admin = await visitor(st);
    await admin.goto(`${ACCORD}/portal/signin?return_to=/admin`);
    await accordSignIn(admin, "admin@contoso.test", "admin-sign-in");
    await waitUrl(admin, `${ACCORD}/admin`);
    await check(admin, "admin-home");

    const app = await firstListed(admin, `${ACCORD}/admin/enterprise-apps?q=Meeting`);
    await visit(admin, `${ACCORD}/admin/enterprise-apps`, "admin-enterprise-apps");
    for (const [tab, name] of [
      ["", "overview"],
      ["/properties", "properties"],
      ["/users-and-groups", "users-and-groups"],
      ["/users-and-groups/add", "add-assignment"],
      ["/permissions", "permissions"],
      ["/activity", "activity"],
    ]) {
      await visit(admin, `${app}${tab}`, `admin-app-${name}`);
    }
    const registration = await firstListed(admin, `${ACCORD}/admin/app-registrations`);
    await visit(admin, `${ACCORD}/admin/app-registrations`, "admin-app-registrations");
    await visit(admin, registration, "admin-app-registration");
    const user = await firstListed(admin, `${ACCORD}/admin/users`);
    await visit(admin, `${ACCORD}/admin/users`, "admin-users");
    await visit(admin, user, "admin-user");
    await visit(admin, `${ACCORD}/admin/users/new`, "admin-new-user");
    const group = await firstListed(admin, `${ACCORD}/admin/groups`);
    await visit(admin, `${ACCORD}/admin/groups`, "admin-groups");
    await visit(admin, group, "admin-group");
    await visit(admin, `${ACCORD}/admin/consent`, "admin-user-consent-settings");
    await visit(admin, `${ACCORD}/admin/consent/classifications`, "admin-classifications");
    await visit(admin, `${ACCORD}/admin/consent/admin-consent-settings`, "admin-request-settings");
    await visit(admin, `${ACCORD}/admin/requests?view=history`, "admin-requests-history");
    const event = await firstListed(admin, `${ACCORD}/admin/audit`);
    await visit(admin, `${ACCORD}/admin/audit`, "admin-audit");
    await visit(admin, event, "admin-audit-event");
    await admin.context().close();
  });

  it("no page scrolls sideways or has a serious accessibility violation", (t) => {
    for (const m of minor) t.diagnostic(`minor or moderate: ${m}`);
    assert.ok(shown.length >= 30, `pages checked: ${shown.join(", ")}`);
    assert.deepEqual(problems, [], problems.join("\n"));
  });
});
