// @accord/test-helper: start a real `accord serve --test-mode` for your tests and drive its
// control API (clock, reset, scenarios, decision journal, fault rules). Node >= 20, no
// dependencies.
//
//   import { startAccord } from "@accord/test-helper";
//   const accord = await startAccord({ scenario: "test/world.toml" });   // bin: $ACCORD_BIN or `accord`
//   await accord.control.advance({ days: 31 });
//   ...
//   await accord.stop();
//
// The server listens on a port the kernel picks (`--listen 127.0.0.1:0`) and announces it on its
// output (`accord listening on ADDR as URL`); it writes its dev CA to <dataDir>/tls/ca.pem and is
// ready once URL/readyz answers 200 over TLS trusting that CA. Every ACCORD_* variable is kept out
// of its environment (a developer's ACCORD_DATABASE_URL or ACCORD_CONFIG does not leak in).
//
// Node's global fetch trusts extra CAs only through NODE_EXTRA_CA_CERTS, read once at start, so
// this module talks to the server with node:https and an explicit `ca`. Clients under test that
// use fetch (msal-node, openid-client, jose) need NODE_EXTRA_CA_CERTS=<caPath> in the environment
// of the node process that runs them (docs/testing-helpers.md).

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";

export const READY_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 10_000;
export const CONTROL_PREFIX = "/_accord/test";
const ANNOUNCEMENT = "accord listening on ";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The server could not be started or never got ready (the message holds its log's tail). */
export class AccordStartError extends Error {
  constructor(message) {
    super(message);
    this.name = "AccordStartError";
  }
}

/**
 * A control API call answered something other than 2xx (or did not answer): `status` (null
 * when there was no answer), `error` (the server's own text), `body` (raw).
 */
export class AccordControlError extends Error {
  constructor(method, path, status, error, body = "") {
    const where = `${method} ${CONTROL_PREFIX}${path}`;
    super(status === null ? `${where}: ${error}` : `${where} answered HTTP ${status}: ${error}`);
    this.name = "AccordControlError";
    this.method = method;
    this.path = path;
    this.status = status;
    this.error = error;
    this.body = body;
  }
}

// ------------------------------------------------------------------ HTTPS trusting one CA

/**
 * One HTTPS request trusting only `ca` (PEM text or Buffer). Resolves to
 * { status, headers, body } (body as text).
 */
export function httpsRequest(url, { method = "GET", ca, headers = {}, body = null, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers, timeout: timeoutMs, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body ?? undefined);
  });
}

/** GET url trusting only `ca` (PEM); resolves to { status, body }. */
export async function httpsGet(url, ca, timeoutMs = 2000) {
  const { status, body } = await httpsRequest(url, { ca, timeoutMs });
  return { status, body };
}

// ------------------------------------------------------------------ the control API

function errorText(status, body) {
  let doc = null;
  try {
    doc = JSON.parse(body);
  } catch {
    // not JSON
  }
  let text;
  if (doc && typeof doc === "object" && "error" in doc) {
    const err = doc.error;
    text = err && typeof err === "object" ? [err.code, err.message].filter(Boolean).join(": ") : String(err);
    if (typeof doc.error_description === "string") text += `: ${doc.error_description}`;
  } else {
    text = body.trim().slice(0, 500) || "(empty body)";
  }
  if (status === 404) text += " (is the server running with --test-mode?)";
  return text;
}

/**
 * A client of the control API at base/_accord/test trusting only `ca` (PEM). Every method
 * resolves to the decoded JSON answer (undefined for 204) and rejects with AccordControlError
 * carrying the server's `error` text on any status other than 2xx.
 */
export function controlClient(base, ca, { timeoutMs = 30_000 } = {}) {
  base = base.replace(/\/+$/, "");
  const call = async (method, p, { json, text } = {}) => {
    const headers = {};
    let body = null;
    if (json !== undefined) {
      body = JSON.stringify(json);
      headers["content-type"] = "application/json";
    } else if (text !== undefined) {
      body = text;
      headers["content-type"] = "application/toml";
    }
    let res;
    try {
      res = await httpsRequest(`${base}${CONTROL_PREFIX}${p}`, { method, ca, headers, body, timeoutMs });
    } catch (e) {
      throw new AccordControlError(method, p, null, `no answer from ${base}: ${e?.message ?? e}`);
    }
    if (res.status < 200 || res.status > 299) {
      throw new AccordControlError(method, p, res.status, errorText(res.status, res.body), res.body);
    }
    if (res.status === 204 || res.body === "") return undefined;
    try {
      return JSON.parse(res.body);
    } catch {
      throw new AccordControlError(method, p, res.status, `not JSON: ${res.body.slice(0, 200)}`, res.body);
    }
  };
  return {
    /** { now, offsetSeconds } on Accord's clock. */
    clock: () => call("GET", "/clock"),
    /** Moves the clock forward (at least 1 s in all; it never goes back): the new clock and `ran`. */
    advance: ({ days = 0, hours = 0, minutes = 0, seconds = 0 } = {}) =>
      call("POST", "/clock/advance", {
        json: Object.fromEntries(Object.entries({ days, hours, minutes, seconds }).filter(([, v]) => v)),
      }),
    /** Back to the scenario the server started with; fault rules and journal cleared. { loaded } */
    reset: () => call("POST", "/reset"),
    /** Loads scenario TOML (string or Buffer) over the world. { loaded }; a bad one rejects (400). */
    loadScenario: (text) => call("POST", "/scenario", { text }),
    /** The decision journal after entry `after`: { entries, last }. */
    journal: (after = 0) => call("GET", `/journal?after=${encodeURIComponent(after)}`),
    /** Adds a fault rule; resolves to it as stored (with its id). */
    addFault: (rule) => call("POST", "/faults", { json: rule }),
    /** The fault rules, each with how often it matched and injected. */
    faults: async () => (await call("GET", "/faults")).rules,
    /** Removes every fault rule. */
    clearFaults: async () => {
      await call("DELETE", "/faults");
    },
  };
}

// ------------------------------------------------------------------ starting the server

/** The last `lines` lines of a log file. */
export function tail(file, lines = 60) {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no server log)";
  }
}

/**
 * The server binary: `bin`, else $ACCORD_BIN, else `accord` on PATH. A name without a slash is
 * looked up on PATH; a path is taken from the current directory. Throws AccordStartError.
 */
export function resolveBinary(bin = process.env.ACCORD_BIN || "accord") {
  if (!bin.includes("/") && !bin.includes(path.sep)) {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
      const candidate = path.join(dir, bin);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {
        // not here
      }
    }
    throw new AccordStartError(
      `no \`${bin}\` on PATH: build the server (cargo build -p accord-server) and put it on PATH, ` +
        "or name the binary (ACCORD_BIN, startAccord({ bin }))",
    );
  }
  const resolved = path.resolve(bin);
  if (!fs.existsSync(resolved) || !fs.statSync(resolved).isFile()) {
    throw new AccordStartError(`accord binary not found at ${resolved}: build it (cargo build -p accord-server) or set ACCORD_BIN`);
  }
  return resolved;
}

/**
 * Polls base/readyz (trusting caPath once it exists) until 200. `child`, when given, is the
 * server process: its exit ends the wait with the log's tail. Rejects with AccordStartError.
 */
export async function waitReady(base, caPath, { child = null, log = null, timeoutMs = READY_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt yet";
  for (;;) {
    exitedEarly(child, log, "before it was ready");
    if (fs.existsSync(caPath)) {
      try {
        const r = await httpsGet(`${base}/readyz`, fs.readFileSync(caPath));
        if (r.status === 200) return;
        last = `HTTP ${r.status}: ${r.body.slice(0, 200)}`;
      } catch (e) {
        last = String(e?.message ?? e);
      }
    } else {
      last = `${caPath} does not exist yet`;
    }
    if (Date.now() > deadline) {
      throw new AccordStartError(
        `accord was not ready at ${base}/readyz within ${timeoutMs / 1000} s (last: ${last}).` +
          (log ? `\n--- server log tail (${log}) ---\n${tail(log, 80)}` : ""),
      );
    }
    await sleep(200);
  }
}

function exitedEarly(child, log, when) {
  if (!child) return;
  if (child.exitCode !== null) {
    throw new AccordStartError(
      `accord exited with status ${child.exitCode} ${when}.\n--- server log tail (${log}) ---\n${tail(log, 80)}`,
    );
  }
  if (child.signalCode !== null) {
    throw new AccordStartError(`accord was killed by ${child.signalCode} ${when}.\n--- server log tail (${log}) ---\n${tail(log, 80)}`);
  }
}

/** The URL of the server's `accord listening on ADDR as URL` line in its log. */
async function announcedUrl(child, log, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  let pending = "";
  for (;;) {
    const fd = fs.openSync(log, "r");
    try {
      const size = fs.fstatSync(fd).size;
      if (size > seen) {
        const buf = Buffer.alloc(size - seen);
        fs.readSync(fd, buf, 0, buf.length, seen);
        seen = size;
        pending += buf.toString("utf8");
      }
    } finally {
      fs.closeSync(fd);
    }
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) {
      if (line.startsWith(ANNOUNCEMENT) && line.includes(" as ")) {
        return line.slice(line.lastIndexOf(" as ") + 4).trim().replace(/\/+$/, "");
      }
    }
    exitedEarly(child, log, "before it announced its URL");
    if (Date.now() > deadline) {
      throw new AccordStartError(`accord announced no URL within ${timeoutMs / 1000} s.\n--- server log tail (${log}) ---\n${tail(log, 80)}`);
    }
    await sleep(50);
  }
}

// setpriv --pdeathsig makes the kernel send SIGTERM to the server when the process that
// started it dies, even by SIGKILL (a runner timeout), so no server outlives the run.
let setprivOk;
function hasSetpriv() {
  if (setprivOk === undefined) {
    const r = spawnSync("setpriv", ["--pdeathsig", "TERM", "true"], { stdio: "ignore" });
    setprivOk = r.status === 0;
  }
  return setprivOk;
}

/**
 * Starts `accord serve --test-mode` and resolves once it is ready:
 *
 *   { base, host, port, ca, caPath, dataDir, log, pid, scenario, control,
 *     authority(tenant), tokenEndpoint(tenant), openidConfigurationUrl(tenant), stop() }
 *
 * `ca` is the dev CA (PEM text), `caPath` its file, `log` the server's output
 * (<dataDir>/accord.log), `control` the control API client (controlClient), stop() ends the
 * server (SIGTERM, then SIGKILL after 10 s) and removes a data dir startAccord made. The
 * server is also killed when this process exits.
 *
 * Options: `bin` (else $ACCORD_BIN, else `accord` on PATH); `scenario` (a file; none: the demo
 * world); `args` (more `accord serve` arguments); `dataDir` (kept; default: a fresh temporary
 * directory); `vars` ({ name: value } scenario variables); `testMode` (default true); `cwd` and
 * `env` of the server; `readyTimeoutMs`.
 */
export async function startAccord({
  bin,
  scenario = null,
  args = [],
  dataDir = null,
  vars = {},
  testMode = true,
  cwd = undefined,
  env = process.env,
  readyTimeoutMs = READY_TIMEOUT_MS,
} = {}) {
  const binary = resolveBinary(bin ?? (process.env.ACCORD_BIN || "accord"));
  const scenarioPath = scenario ? path.resolve(scenario) : null;
  if (scenarioPath && !fs.existsSync(scenarioPath)) {
    throw new AccordStartError(`scenario file not found: ${scenarioPath}`);
  }
  const ownsDataDir = !dataDir;
  dataDir = dataDir ? path.resolve(dataDir) : fs.mkdtempSync(path.join(os.tmpdir(), "accord-"));
  fs.mkdirSync(dataDir, { recursive: true });
  const caPath = path.join(dataDir, "tls", "ca.pem");
  const log = path.join(dataDir, "accord.log");
  const argv = [
    "serve",
    "--data-dir", dataDir,
    "--listen", "127.0.0.1:0",
    "--public-url", "https://localhost:0",
    ...(scenarioPath ? ["--scenario", scenarioPath] : []),
    ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}=${v}`]),
    ...(testMode ? ["--test-mode"] : []),
    ...args.map(String),
  ];
  const childEnv = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith("ACCORD_")));
  const [cmd, cmdArgs] = hasSetpriv() ? ["setpriv", ["--pdeathsig", "TERM", binary, ...argv]] : [binary, argv];
  const fd = fs.openSync(log, "w");
  fs.writeSync(fd, `$ ${[binary, ...argv].join(" ")}\n`);
  const child = spawn(cmd, cmdArgs, { cwd, env: childEnv, stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  const spawnError = new Promise((_, reject) =>
    child.once("error", (e) => reject(new AccordStartError(`cannot start ${binary}: ${e.message}`))),
  );
  spawnError.catch(() => {}); // seen by the race below; later errors show as an exit
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const exited = new Promise((resolve) => child.once("exit", resolve));
  const terminate = async () => {
    process.removeListener("exit", killOnExit);
    // No pid: it never started (the "error" event), so there is nothing to end or wait for.
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  let stopped = null;
  const stop = () => {
    stopped ??= (async () => {
      await terminate();
      if (ownsDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    })();
    return stopped;
  };

  let base;
  try {
    const deadline = Date.now() + readyTimeoutMs;
    base = await Promise.race([announcedUrl(child, log, readyTimeoutMs), spawnError]);
    const timeoutMs = Math.max(deadline - Date.now(), 1000);
    await Promise.race([waitReady(base, caPath, { child, log, timeoutMs }), spawnError]);
  } catch (e) {
    await terminate(); // a data dir startAccord made stays, for a look at its log
    throw e;
  }
  const url = new URL(base);
  const ca = fs.readFileSync(caPath, "utf8");
  const authority = (tenant) => {
    if (!tenant) throw new TypeError("name a tenant: its id, a domain, common or organizations");
    return `${base}/${tenant}`;
  };
  return {
    base,
    host: url.host,
    port: Number(url.port),
    ca,
    caPath,
    dataDir,
    log,
    pid: child.pid,
    scenario: scenarioPath,
    control: controlClient(base, ca),
    authority,
    tokenEndpoint: (tenant) => `${authority(tenant)}/oauth2/v2.0/token`,
    openidConfigurationUrl: (tenant) => `${authority(tenant)}/v2.0/.well-known/openid-configuration`,
    stop,
  };
}
