// A single-page app on unmodified @azure/msal-browser (the version pinned in package.json, its
// browser bundle as published) signs a user in against Accord and calls Graph, in Chromium.
//
// Accord alone (the built-in demo world) and a tiny SPA this test serves itself on
// http://localhost:<kernel's port>/ (localhost is a secure context: WebCrypto, so PKCE, works).
// Its app registration is Contoso Expenses (homed in Contoso, asking only for permissions
// Contoso classifies low, so Alice may consent for herself). Then:
//   the Contoso administrator adds the SPA's address as a "Single-page application" redirect
//   URI in the admin center; Alice opens the SPA and chooses Sign in (loginRedirect, PKCE and
//   the code redemption are msal-browser's own); she signs in at Accord and accepts the consent
//   page; back in the SPA, handleRedirectPromise yields her account, acquireTokenSilent a
//   Graph token, and the page fetches /v1.0/me cross-origin and shows her name; Refresh
//   (acquireTokenSilent with forceRefresh) redeems the refresh token cross-origin for a new
//   access token. The test watches the requests (never changes them): the token endpoint was
//   called with the SPA's Origin, no client secret, and answered that origin
//   (Access-Control-Allow-Origin), and answers an origin nobody registered without it.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import {
  ACCORD,
  CONTOSO_TENANT,
  accordSignIn,
  launchBrowser,
  mainText,
  person,
  portal,
  startAccord,
  story,
  waitUrl,
} from "../support.mjs";

/** Contoso Expenses: registered in Contoso; its users may consent to it themselves. */
const APP_ID = "5e7c1a9d-3f2b-4c6e-8a14-9b0d2e4f6a71";
const ALICE = "alice@contoso.test";
/** msal-browser's UMD bundle (it defines the global `msal`), from the installed package. */
const MSAL_DIR = path.dirname(createRequire(import.meta.url).resolve("@azure/msal-browser"));
const MSAL_BUNDLE = path.join(MSAL_DIR, "msal-browser.js");
const MSAL_VERSION = JSON.parse(fs.readFileSync(path.join(MSAL_DIR, "..", "package.json"), "utf8")).version;
/**
 * msal logs codes ("… : Info - 0le6uv"); the packages ship what each code means. Only the
 * test's copy of the console is decoded, for a failure's message.
 */
const MSAL_LOG_STRINGS = Object.assign(
  {},
  ...[
    path.join(MSAL_DIR, "log-strings-mapping.json"),
    path.join(MSAL_DIR, "..", "..", "msal-common", "dist-browser", "log-strings-mapping.json"),
  ]
    .filter((f) => fs.existsSync(f))
    .map((f) => JSON.parse(fs.readFileSync(f, "utf8")).mappings),
);
const decodeMsalLog = (line) => line.replace(/ - ([0-9a-z]{6})\b/, (all, code) => (MSAL_LOG_STRINGS[code] ? ` - ${MSAL_LOG_STRINGS[code].message}` : all));

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Contoso Expenses (single-page app)</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f6f7f9; }
  header { background: #0f6cbd; color: #fff; padding: 14px 28px; font-size: 18px; font-weight: 600; }
  main { max-width: 760px; margin: 24px auto; background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 20px 28px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  .sub { color: #555; margin: 0 0 16px; }
  dl { display: grid; grid-template-columns: 190px 1fr; gap: 6px 12px; margin: 16px 0; }
  dt { color: #555; }
  dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
  .mono { font-family: ui-monospace, monospace; font-weight: 400; font-size: 13px; }
  button { font: inherit; padding: 7px 16px; border-radius: 4px; border: 1px solid #0f6cbd; background: #0f6cbd; color: #fff; cursor: pointer; margin-right: 8px; }
  button[disabled] { opacity: .45; cursor: default; }
  #error { color: #b10e1c; white-space: pre-wrap; }
</style>
<script src="/msal-browser.js"></script>
<script src="/config.js"></script>
</head>
<body>
<header>Contoso Expenses</header>
<main>
  <h1>Single-page app</h1>
  <p class="sub">@azure/msal-browser <span id="msal-version"></span>: authorization code flow with PKCE, tokens redeemed from the browser.</p>
  <p><button id="sign-in" disabled>Sign in</button><button id="refresh" disabled>Refresh token</button></p>
  <dl>
    <dt>Status</dt><dd id="status">Loading…</dd>
    <dt>Account</dt><dd id="account">–</dd>
    <dt>Graph /v1.0/me</dt><dd id="display-name">–</dd>
    <dt>Access token</dt><dd id="token" class="mono">–</dd>
    <dt>Scopes</dt><dd id="scopes" class="mono">–</dd>
    <dt>Authority</dt><dd id="authority" class="mono">–</dd>
  </dl>
  <p id="error"></p>
</main>
<script src="/app.js"></script>
</body>
</html>
`;

// The app: what a developer would write following msal-browser's documentation.
const APP_JS = `"use strict";
const cfg = window.SPA_CONFIG;
const $ = (id) => document.getElementById(id);
const show = (id, text) => { $(id).textContent = text; };
// What the test reads back: every access token the app obtained, and the app's state.
window.spa = { state: "loading", tokens: [], errors: [] };

function fail(step, e) {
  const text = step + ": " + ((e && (e.errorCode || e.name)) || "error") + ": " + ((e && e.message) || e);
  console.error(text);
  window.spa.errors.push(text);
  window.spa.state = "error";
  show("error", text);
}

const pca = new msal.PublicClientApplication({
  auth: {
    clientId: cfg.clientId,
    authority: cfg.authority,
    knownAuthorities: cfg.knownAuthorities,
    redirectUri: cfg.redirectUri,
  },
  cache: { cacheLocation: "sessionStorage" },
  system: {
    loggerOptions: {
      logLevel: msal.LogLevel.Verbose,
      piiLoggingEnabled: false,
      loggerCallback: (level, message) => console.log("[msal] " + message),
    },
  },
});

function claims(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
}

async function useToken(result) {
  window.spa.tokens.push({ accessToken: result.accessToken, fromCache: result.fromCache, scopes: result.scopes });
  const c = claims(result.accessToken);
  show("token", "#" + window.spa.tokens.length + " …" + result.accessToken.slice(-16)
    + (result.fromCache ? " (from cache)" : " (from the token endpoint)")
    + ", expires " + new Date(c.exp * 1000).toISOString().slice(11, 19) + " UTC");
  show("scopes", String(c.scp));
  const res = await fetch(cfg.graph + "/v1.0/me", { headers: { Authorization: "Bearer " + result.accessToken } });
  if (!res.ok) throw new Error("GET /v1.0/me answered " + res.status + ": " + (await res.text()));
  const me = await res.json();
  show("display-name", me.displayName);
  return me;
}

async function main() {
  show("msal-version", msal.version);
  show("authority", cfg.authority);
  await pca.initialize();
  const redirect = await pca.handleRedirectPromise();
  const account = (redirect && redirect.account) || pca.getAllAccounts()[0] || null;
  if (!account) {
    $("sign-in").disabled = false;
    show("status", "Not signed in");
    window.spa.state = "signed-out";
    return;
  }
  pca.setActiveAccount(account);
  show("status", redirect ? "Signed in (redirect handled)" : "Signed in");
  show("account", account.username + " (" + account.tenantId + ")");
  window.spa.account = { username: account.username, tenantId: account.tenantId, homeAccountId: account.homeAccountId };
  const result = await pca.acquireTokenSilent({ scopes: ["User.Read"], account });
  await useToken(result);
  $("refresh").disabled = false;
  window.spa.state = "signed-in";
}

$("sign-in").addEventListener("click", () => {
  window.spa.state = "redirecting";
  pca.loginRedirect({ scopes: ["User.Read"] }).catch((e) => fail("loginRedirect", e));
});

$("refresh").addEventListener("click", async () => {
  window.spa.state = "refreshing";
  try {
    const result = await pca.acquireTokenSilent({ scopes: ["User.Read"], account: pca.getActiveAccount(), forceRefresh: true });
    await useToken(result);
    show("status", "Signed in (token refreshed)");
    window.spa.state = "refreshed";
  } catch (e) {
    fail("acquireTokenSilent(forceRefresh)", e);
  }
});

main().catch((e) => fail("start", e));
`;

/** Serves the SPA on 127.0.0.1:<kernel's port>; resolves { server, origin }. */
function serveSpa(config) {
  const files = {
    "/": ["text/html; charset=utf-8", () => INDEX_HTML],
    "/app.js": ["text/javascript; charset=utf-8", () => APP_JS],
    "/config.js": ["text/javascript; charset=utf-8", () => `window.SPA_CONFIG = ${JSON.stringify(config())};\n`],
    "/msal-browser.js": ["text/javascript; charset=utf-8", () => fs.readFileSync(MSAL_BUNDLE)],
  };
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, "http://localhost").pathname;
    if (pathname === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    const file = files[pathname];
    if (!file || req.method !== "GET") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]());
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const origin = `http://localhost:${server.address().port}`;
      resolve({ server, origin });
    });
  });
}

/** A POST from node with an Origin header; resolves { status, headers }. */
function postFrom(origin, url, form, ca) {
  return new Promise((resolve, reject) => {
    const body = new URLSearchParams(form).toString();
    const req = https.request(
      url,
      {
        method: "POST",
        ca,
        agent: false,
        headers: { origin, "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("a single-page app on unmodified msal-browser", { concurrency: 1 }, () => {
  let accord, browser, spa, config;
  let spaOrigin = null;

  before(async () => {
    accord = await startAccord("spa-msal-browser");
    // The page's configuration names the SPA's own address, known once the server listens.
    spa = await serveSpa(() => config);
    spaOrigin = spa.origin;
    config = {
      clientId: APP_ID,
      authority: `${ACCORD}/${CONTOSO_TENANT}`,
      knownAuthorities: [new URL(ACCORD).host],
      redirectUri: `${spaOrigin}/`,
      graph: ACCORD,
    };
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    spa?.server.closeAllConnections();
    await new Promise((r) => (spa ? spa.server.close(r) : r()));
    await accord?.stop();
  });

  it("signs in with loginRedirect, calls Graph, and refreshes its token cross-origin", async () => {
    const st = story("spa-msal-browser");

    // The administrator registers the SPA's address on the platform "Single-page application".
    const admin = await portal(browser, st, "admin@contoso.test", `/admin/app-registrations/${APP_ID}`);
    await admin.fill("#uri", config.redirectUri);
    await admin.selectOption("#platform", "spa");
    await admin.shot("admin-add-spa-redirect-uri");
    await Promise.all([admin.waitForLoadState(), admin.getByRole("button", { name: "Add URI" }).click()]);
    await waitUrl(admin, `${ACCORD}/admin/app-registrations/${APP_ID}**`);
    const row = admin.locator("tr", { hasText: config.redirectUri });
    assert.match(await row.innerText(), /Single-page application/);
    await admin.shot("admin-spa-redirect-uri-added");
    await admin.context().close();

    // Alice opens the SPA. Everything the page says into its console (msal's log included) is
    // kept for a failure's message; every token-endpoint request and response is watched.
    const alice = await person(browser, st);
    const consoleLines = [];
    alice.on("console", (m) => consoleLines.push(`${m.type()}: ${decodeMsalLog(m.text())} (${m.location().url})`));
    alice.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
    const tokenCalls = [];
    const seen = []; // every request the page made, and how it ended
    alice.on("response", (res) => {
      const req = res.request();
      seen.push(`${res.status()} ${req.method()} ${req.url().split("?")[0]}`);
      if (req.method() === "POST" && /\/oauth2\/v2\.0\/token(\?|$)/.test(req.url())) tokenCalls.push({ req, res });
    });
    alice.on("requestfailed", (req) => seen.push(`FAILED (${req.failure()?.errorText}) ${req.method()} ${req.url().split("?")[0]}`));
    const why = () => `\n--- the SPA's console (last 80 lines) ---\n${consoleLines.slice(-80).join("\n")}`;
    const spaState = (want, timeout = 20_000) =>
      alice
        .waitForFunction((w) => window.spa && (window.spa.state === w || window.spa.state === "error"), want, { timeout })
        .then(() => alice.evaluate(() => window.spa))
        .then((s) => {
          assert.equal(s.state, want, `the SPA is in state ${s.state}: ${s.errors.join("; ")}${why()}`);
          return s;
        })
        .catch(async (e) => {
          try {
            await alice.shot("FAILED");
          } catch {}
          throw e.code === "ERR_ASSERTION" ? e : new Error(`${e.message}${why()}`);
        });

    await alice.goto(`${spaOrigin}/`);
    await spaState("signed-out");
    assert.equal(await alice.locator("#msal-version").innerText(), MSAL_VERSION);
    await alice.shot("spa-signed-out");

    // Sign in: msal-browser sends her to Accord's authorize endpoint (code, PKCE S256).
    await Promise.all([alice.waitForURL(`${ACCORD}/**`), alice.click("#sign-in")]);
    const authorize = new URL(alice.url());
    await accordSignIn(alice, ALICE, "alice-accord-sign-in");
    // Alice has not consented to Contoso Expenses yet; its permissions are ones she may grant.
    await alice.getByRole("heading", { name: "Permissions requested" }).waitFor();
    assert.match(await mainText(alice), /Contoso Expenses/);
    await alice.shot("alice-consent");
    await Promise.all([alice.waitForURL(`${spaOrigin}/**`), alice.getByRole("button", { name: "Accept" }).click()]);

    const signedIn = await spaState("signed-in");
    assert.equal(signedIn.account.username, ALICE);
    assert.equal(signedIn.account.tenantId, CONTOSO_TENANT);
    assert.equal(await alice.locator("#display-name").innerText(), "Alice Johnson");
    assert.match(await alice.locator("#scopes").innerText(), /User\.Read/);
    assert.equal(signedIn.tokens.length, 1);
    await alice.shot("spa-signed-in");

    // What msal-browser asked for, and how it redeemed the code: from the SPA's origin, with
    // its PKCE verifier, without a secret; Accord's answer named that origin.
    assert.match(authorize.pathname, new RegExp(`^/${CONTOSO_TENANT}/oauth2/v2\\.0/authorize$`));
    assert.equal(authorize.searchParams.get("client_id"), APP_ID);
    assert.equal(authorize.searchParams.get("redirect_uri"), config.redirectUri);
    assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
    assert.ok(authorize.searchParams.get("code_challenge"), "a PKCE challenge");
    const codeCall = await tokenCall(tokenCalls, "authorization_code");
    assert.ok(codeCall.form.get("code_verifier"), "the code was redeemed with its PKCE verifier");
    assert.equal(codeCall.form.get("redirect_uri"), config.redirectUri);
    assertCrossOrigin(codeCall, spaOrigin);

    // Refresh: acquireTokenSilent with forceRefresh redeems the refresh token cross-origin.
    await alice.click("#refresh");
    const refreshed = await spaState("refreshed");
    assert.equal(refreshed.tokens.length, 2);
    const [first, second] = refreshed.tokens;
    assert.equal(second.fromCache, false, "the refreshed token came from the token endpoint");
    assert.notEqual(second.accessToken, first.accessToken, "a new access token");
    assert.equal(await alice.locator("#display-name").innerText(), "Alice Johnson");
    const refreshCall = await tokenCall(tokenCalls, "refresh_token");
    assert.ok(refreshCall.form.get("refresh_token"), "msal-browser sent its refresh token");
    assertCrossOrigin(refreshCall, spaOrigin);
    await alice.shot("spa-refreshed");
    // Nothing msal-browser or the page asked for failed along the way (a 4xx, a CORS refusal).
    const failed = seen.filter((s) => !/^(2|3)\d\d /.test(s));
    assert.deepEqual(failed, [], `requests that failed:\n${failed.join("\n")}${why()}`);

    // An origin no app registered gets no Access-Control-Allow-Origin from the token endpoint:
    // the same server under another name (127.0.0.1) is another origin.
    const denied = await postFrom(
      `http://127.0.0.1:${new URL(spaOrigin).port}`,
      `${ACCORD}/${CONTOSO_TENANT}/oauth2/v2.0/token`,
      { grant_type: "refresh_token", client_id: APP_ID, refresh_token: "not-a-refresh-token", scope: "User.Read" },
      accord.ca,
    );
    assert.equal(denied.status, 400, "an unknown refresh token is refused");
    assert.equal(denied.headers["access-control-allow-origin"], undefined, `headers: ${JSON.stringify(denied.headers)}`);
    assert.match(denied.headers.vary ?? "", /origin/i, "Vary: Origin");
  });
});

/** The last token-endpoint call with this grant type, with its form and all its headers. */
async function tokenCall(calls, grantType) {
  for (const call of [...calls].reverse()) {
    const form = new URLSearchParams(call.req.postData() ?? "");
    if (form.get("grant_type") !== grantType) continue;
    return { form, status: call.res.status(), request: await call.req.allHeaders(), response: await call.res.allHeaders() };
  }
  throw new Error(`no POST to the token endpoint with grant_type=${grantType}; saw ${calls.length} token calls`);
}

/** A token request from the SPA's origin, answered for that origin, without a client secret. */
function assertCrossOrigin(call, origin) {
  const grant = call.form.get("grant_type");
  assert.equal(call.status, 200, `${grant}: status ${call.status}`);
  assert.equal(call.request.origin, origin, `${grant}: the request's Origin`);
  assert.equal(call.form.get("client_secret"), null, `${grant}: no client secret from a browser`);
  assert.equal(call.response["access-control-allow-origin"], origin, `${grant}: Access-Control-Allow-Origin`);
  assert.match(call.response.vary ?? "", /origin/i, `${grant}: Vary: Origin`);
}
