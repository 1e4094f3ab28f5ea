// Helpers for the browser stories: a fresh Accord + Meeting Insights pair, and Chromium.
//
// startPair() starts, in fresh temporary data dirs and on ports no other server uses:
//   $ACCORD_BIN serve --listen 127.0.0.1:0 --public-url https://localhost:0 --data-dir A
//               --var vendor_url=https://localhost:P
//   demo-vendor --listen 127.0.0.1:P --public-url https://localhost:P --data-dir V
//               --accord-url <the URL Accord announced> --accord-ca A/tls/ca.pem
// Accord without --scenario loads the built-in demo world, whose Meeting Insights redirect
// URIs follow its vendor_url variable, and whose meetings are placed relative to the day it is
// loaded. Accord's port is the kernel's choice, announced on its first line; the app's port P
// must be known before Accord starts, so it is one the kernel just gave out and released, and
// the pair starts again on a new one should another process take it in between.
// ACCORD and VENDOR are the running pair's URLs (live bindings: read them after startPair()).
// startAccord() starts Accord alone the same way (no --var), for stories without the vendor app.

import { spawn } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, "..");
/** The running pair's base URLs, set by startPair(). */
export let ACCORD = null;
export let VENDOR = null;
export const CLIENT_ID = "3bcad3f8-39bc-495b-b118-04d692e0bb31";
export const CONTOSO_TENANT = "6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10";
export const SCREENSHOTS = path.join(HERE, "screenshots");
export const CHROMIUM = process.env.ACCORD_E2E_CHROMIUM ?? "/usr/bin/chromium";
export const SUPPORT_PASSWORD = "Passw0rd!vendor-support";

export const password = (upn) => {
  const [name, domain] = upn.split("@");
  return `Passw0rd!${domain.split(".")[0]}-${name}`;
};

function binary(envName, name) {
  const named = process.env[envName];
  if (!named) return path.join(REPO_ROOT, "target", "debug", name);
  return path.isAbsolute(named) ? named : path.resolve(REPO_ROOT, named);
}

/** A port the kernel just gave out on 127.0.0.1, released again. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function httpsStatus(url, ca) {
  return new Promise((resolve) => {
    const req = https.get(url, { ca, timeout: 2000, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(0));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function waitUp(name, url, caPath, child, log, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with ${child.exitCode} before answering:\n${tail(log)}`);
    }
    if (fs.existsSync(caPath)) {
      const status = await httpsStatus(url, fs.readFileSync(caPath));
      if (status >= 200 && status < 500) return;
    }
    if (Date.now() > deadline) throw new Error(`${name} did not answer ${url} in ${timeoutMs} ms:\n${tail(log)}`);
    await sleep(200);
  }
}

function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("ACCORD_") && !k.startsWith("DEMO_VENDOR_")) env[k] = v;
  }
  return env;
}

/** Waits for `accord listening on ADDR as URL` in the log; returns URL. */
async function announcedUrl(name, log, child, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = "";
    try {
      text = fs.readFileSync(log, "utf8");
    } catch {}
    const m = text.match(/^accord listening on \S+ as (\S+)$/m);
    if (m) return m[1];
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before listening:\n${tail(log)}`);
    if (Date.now() > deadline) throw new Error(`${name} did not announce its port in ${timeoutMs} ms:\n${tail(log)}`);
    await sleep(100);
  }
}

async function stopAll(children) {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGTERM");
      await Promise.race([new Promise((r) => c.once("exit", r)), sleep(5000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
  }
}

/** Starts Accord (demo world) and Meeting Insights in fresh data dirs; sets ACCORD and VENDOR. */
export async function startPair(label) {
  const failures = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startPairOnce(`${label}-${attempt}`);
    } catch (e) {
      failures.push(e.message);
      // Only a port taken between freePort() and the app's bind is worth another try.
      if (!/in use|EADDRINUSE|binding/i.test(e.message)) break;
    }
  }
  throw new Error(`the Accord + Meeting Insights pair did not start:\n${failures.join("\n---\n")}`);
}

/** `$ACCORD_BIN serve` (the built-in demo world) on a port the kernel chooses, logging to `log`. */
function spawnAccord(dataDir, log, env, extraArgs = []) {
  return spawn(
    binary("ACCORD_BIN", "accord"),
    [
      "serve",
      "--listen", "127.0.0.1:0",
      "--public-url", "https://localhost:0",
      "--data-dir", dataDir,
      ...extraArgs,
    ],
    { env, stdio: ["ignore", fs.openSync(log, "w"), fs.openSync(log, "a")] },
  );
}

/**
 * Starts Accord alone (the built-in demo world) in a fresh data dir, for stories that need no
 * Meeting Insights (a single-page app the test serves itself); sets ACCORD (VENDOR stays null).
 * `extraArgs` go to `accord serve` (`--var vendor_url=…`).
 * Its port is the kernel's choice, so there is nothing to retry.
 */
export async function startAccord(label, extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `accord-e2e-${label}-`));
  const accordDir = path.join(dir, "accord");
  const accordLog = path.join(dir, "accord.log");
  const accord = spawnAccord(accordDir, accordLog, cleanEnv(), extraArgs);
  const stop = () => stopAll([accord]);
  const caPath = path.join(accordDir, "tls", "ca.pem");
  try {
    const accordUrl = await announcedUrl("accord", accordLog, accord);
    await waitUp("accord", `${accordUrl}/readyz`, caPath, accord, accordLog);
    ACCORD = accordUrl;
  } catch (e) {
    await stop();
    if (process.env.ACCORD_E2E_KEEP !== "1") fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    accordLog,
    /** The development CA that signed Accord's certificate (for requests from node). */
    ca: fs.readFileSync(caPath),
    async stop({ keep = false } = {}) {
      await stop();
      const logDir = process.env.ACCORD_INTEROP_LOG_DIR;
      if (logDir) {
        fs.mkdirSync(logDir, { recursive: true });
        fs.copyFileSync(accordLog, path.join(logDir, `e2e-${label}-accord.log`));
      }
      if (!keep && process.env.ACCORD_E2E_KEEP !== "1") fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startPairOnce(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `accord-e2e-${label}-`));
  const accordDir = path.join(dir, "accord");
  const vendorDir = path.join(dir, "vendor");
  const accordLog = path.join(dir, "accord.log");
  const vendorLog = path.join(dir, "vendor.log");
  const env = cleanEnv();
  const vendorPort = await freePort();
  const vendorUrl = `https://localhost:${vendorPort}`;

  const accord = spawnAccord(accordDir, accordLog, env, ["--var", `vendor_url=${vendorUrl}`]);
  const children = [accord];
  const stop = () => stopAll(children);
  try {
    const accordUrl = await announcedUrl("accord", accordLog, accord);
    await waitUp("accord", `${accordUrl}/readyz`, path.join(accordDir, "tls", "ca.pem"), accord, accordLog);
    const vendorBin = binary("DEMO_VENDOR_BIN", "demo-vendor");
    const vendor = spawn(
      vendorBin,
      [
        "--listen", `127.0.0.1:${vendorPort}`,
        "--public-url", vendorUrl,
        "--data-dir", vendorDir,
        "--accord-url", accordUrl,
        "--accord-ca", path.join(accordDir, "tls", "ca.pem"),
        "--support-password", SUPPORT_PASSWORD,
        "--sync-interval", "0",
      ],
      { env, stdio: ["ignore", fs.openSync(vendorLog, "w"), fs.openSync(vendorLog, "a")] },
    );
    children.push(vendor);
    await waitUp("demo-vendor", `${vendorUrl}/`, path.join(vendorDir, "tls", "ca.pem"), vendor, vendorLog);
    ACCORD = accordUrl;
    VENDOR = vendorUrl;
  } catch (e) {
    await stop();
    if (process.env.ACCORD_E2E_KEEP !== "1") fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    accordLog,
    vendorLog,
    async stop({ keep = false } = {}) {
      await stop();
      const logDir = process.env.ACCORD_INTEROP_LOG_DIR;
      if (logDir) {
        fs.mkdirSync(logDir, { recursive: true });
        fs.copyFileSync(accordLog, path.join(logDir, `e2e-${label}-accord.log`));
        fs.copyFileSync(vendorLog, path.join(logDir, `e2e-${label}-vendor.log`));
      }
      if (!keep && process.env.ACCORD_E2E_KEEP !== "1") fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with a fresh profile. */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium; scripts/test-all does)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "accord-e2e-chromium-"));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
    ].filter((a) => !a.startsWith("--user-data-dir")), // playwright makes its own profile dir
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return browser;
}

/** A story's screenshot counter: every step of every person in it is numbered in order. */
export function story(name) {
  return { name, n: 0 };
}

/**
 * One person = one browser context (its own cookies, like a private window).
 * ignoreHTTPSErrors: both servers serve certificates from their own development CAs, made
 * fresh for each run. This is a test-only browser talking only to local dev servers, so it
 * skips certificate checks instead of importing the throwaway CAs into an NSS database.
 * page.shot(step) saves screenshots/<story>-<nn>-<step>.png (full page). contextOptions go to
 * browser.newContext (the page gallery sets bypassCSP to inject axe-core).
 */
export async function person(browser, st, contextOptions = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1000, height: 700 },
    locale: "en-US",
    ...contextOptions,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.st = st;
  page.shot = async (step) => {
    const st = page.st;
    st.n += 1;
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${st.name}-${String(st.n).padStart(2, "0")}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
  return page;
}

/** On Accord's sign-in page: fill in the account and submit (screenshot before submitting). */
export async function accordSignIn(page, upn, step = "accord-sign-in") {
  await page.waitForSelector("#login");
  await page.fill("#login", upn);
  await page.fill("#passwd", password(upn));
  await page.shot(step);
  await Promise.all([page.waitForLoadState(), page.click("form button[type=submit]")]);
}

/** Text of the page's <main> (for assertions and failure messages). */
export async function mainText(page) {
  return (await page.locator("main").first().innerText()).replace(/\s+/g, " ").trim();
}

/** page.waitForURL, with the page it is on instead and that page's text in the error. */
export async function waitUrl(page, pattern, timeout = 20_000) {
  try {
    await page.waitForURL(pattern, { timeout });
  } catch (e) {
    let text = "";
    try {
      text = (await page.locator("body").innerText()).replace(/\s+/g, " ").slice(0, 600);
    } catch {}
    try {
      await page.shot("FAILED");
    } catch {}
    throw new Error(`expected ${pattern}, but the page is ${page.url()}: ${text}`);
  }
}

// ------------------------------------------------------------------ steps several stories share

/** Vendor support switches an instance's consent mode (Option 2: Contoso to "user_consent"). */
export async function setInstanceMode(browser, st, instance, mode) {
  const support = await person(browser, st);
  await support.goto(`${VENDOR}/support`);
  await support.fill("#password", SUPPORT_PASSWORD);
  await support.click("#support-login-button");
  await support.selectOption(`#mode-${instance}`, mode);
  await support.shot(`support-${mode.replace(/_/g, "-")}`);
  await support.click(`#save-mode-${instance}`);
  const saved = await support.locator(`#instance-${instance}`).getAttribute("data-mode");
  await support.context().close();
  if (saved !== mode) throw new Error(`support set ${instance} to ${mode}, the page says ${saved}`);
}

/**
 * A Contoso user connects their calendar at Meeting Insights, meets Accord's "Approval
 * required", writes `reason` and sends the request; resolves on the "Request sent" page.
 * `page` is the person's existing page (a retry) or a new one.
 */
export async function requestApproval(browser, st, upn, reason, page = null) {
  const who = upn.split("@")[0];
  const retry = page !== null;
  page ??= await person(browser, st);
  await page.goto(`${VENDOR}/signin/contoso`);
  if (retry) {
    await page.click("#try-again");
  } else {
    await page.locator("#approval-note").waitFor();
    await page.shot(`${who}-connect`);
    await page.click("#start-sign-in");
  }
  if (await page.locator("#login").count()) await accordSignIn(page, upn, `${who}-accord-sign-in`);
  await page.getByRole("heading", { name: "Approval required" }).waitFor();
  await page.fill("#reason", reason);
  await page.shot(`${who}-approval-required`);
  await page.getByRole("button", { name: "Request approval" }).click();
  await page.getByRole("heading", { name: "Request sent" }).waitFor();
  await page.shot(`${who}-request-sent`);
  return page;
}

/** A new window signed in to Accord's portal as `upn`, on `path` (/admin/requests, /myapps ...). */
export async function portal(browser, st, upn, path) {
  const page = await person(browser, st);
  await page.goto(`${ACCORD}/portal/signin?return_to=${encodeURIComponent(path)}`);
  await accordSignIn(page, upn, `${upn.split("@")[0]}-portal-sign-in`);
  await waitUrl(page, `${ACCORD}${path}**`);
  return page;
}
