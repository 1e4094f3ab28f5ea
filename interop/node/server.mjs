// Starts one real `accord serve` for the Node interop tier and stops it again.
//
//   $ACCORD_BIN serve --data-dir <tmp> --listen 127.0.0.1:<free port>
//                     --public-url https://localhost:<port> --scenario interop/scenario.toml
//                     --allow-http-notification-urls --subscription-review-ms 500
//
// A test may start a server of its own (other limits, say) with startServer({ extraArgs,
// tlsFrom }): `tlsFrom` names the data dir of a running server whose TLS material (dev CA and
// certificate) the new one reuses, so a test process that trusts that CA through
// NODE_EXTRA_CA_CERTS trusts the new server too.
//
// ACCORD_BIN defaults to target/debug/accord; a relative ACCORD_BIN is taken from the
// repository root (as in interop/python). Every other ACCORD_* variable is kept out of the
// server's environment, so a developer's ACCORD_DATABASE_URL or ACCORD_CONFIG does not leak
// into this world. The server writes its dev CA to <data-dir>/tls/ca.pem; startServer()
// resolves once https://localhost:<port>/readyz answers 200 over TLS trusting that CA.
//
// This module only uses node:https with an explicit `ca`, so it works in a process that was
// started without NODE_EXTRA_CA_CERTS (run.mjs). The tests themselves use global fetch, which
// trusts the CA only through NODE_EXTRA_CA_CERTS, read once at process start.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, "..", "..");
export const SCENARIO = path.resolve(HERE, "..", "scenario.toml");
export const READY_TIMEOUT_MS = 60_000;

/**
 * Flags of every interop server: change notifications may go to the tests' own receivers on
 * http://127.0.0.1 (https is required otherwise), and access to subscribed mailboxes is
 * reviewed every 500 ms instead of every 5 s.
 */
export const SERVER_FLAGS = ["--allow-http-notification-urls", "--subscription-review-ms", "500"];

export function serverBinary() {
  const named = process.env.ACCORD_BIN;
  if (!named) return path.join(REPO_ROOT, "target", "debug", "accord");
  return path.isAbsolute(named) ? named : path.resolve(REPO_ROOT, named);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** GET url trusting only `ca` (PEM text); resolves to { status, body }. */
export function httpsGet(url, ca, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

export function tail(file, lines = 60) {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no server log)";
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls base/readyz (trusting caPath once it exists) until 200. `child`, when given, is the
 * server process: its early exit ends the wait with the log's tail.
 */
export async function waitReady(base, caPath, { child = null, log = null, timeoutMs = READY_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt yet";
  for (;;) {
    if (child && child.exitCode !== null) {
      throw new Error(
        `accord exited with status ${child.exitCode} before it was ready.\n` +
          `--- server log tail (${log}) ---\n${tail(log, 80)}`,
      );
    }
    if (child && child.signalCode !== null) {
      throw new Error(`accord was killed by ${child.signalCode} before it was ready.\n${tail(log, 80)}`);
    }
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
      throw new Error(
        `accord was not ready at ${base}/readyz within ${timeoutMs / 1000} s (last: ${last}).` +
          (log ? `\n--- server log tail (${log}) ---\n${tail(log, 80)}` : ""),
      );
    }
    await sleep(200);
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
 * Starts the server with a fresh data dir. Resolves to
 *   { base, host, port, ca, dataDir, log, pid, stop() }
 * where `ca` is the path of <data-dir>/tls/ca.pem and stop() ends the server (SIGTERM, then
 * SIGKILL after 10 s). The server is also killed when this process exits.
 *
 * `extraArgs` go after SERVER_FLAGS. `tlsFrom`: the data dir of another server whose tls/
 * (CA and certificate) is copied into the new data dir first; the server reuses it.
 */
export async function startServer({
  bin = serverBinary(),
  scenario = SCENARIO,
  dataDir = null,
  extraArgs = [],
  tlsFrom = null,
} = {}) {
  if (!fs.existsSync(bin)) {
    throw new Error(`accord binary not found at ${bin}: run \`cargo build -p accord-server\` or set ACCORD_BIN`);
  }
  dataDir ??= fs.mkdtempSync(path.join(os.tmpdir(), "accord-node-"));
  if (tlsFrom) {
    fs.cpSync(path.join(tlsFrom, "tls"), path.join(dataDir, "tls"), { recursive: true });
  }
  const port = await freePort();
  const host = `localhost:${port}`;
  const base = `https://${host}`;
  const ca = path.join(dataDir, "tls", "ca.pem");
  const log = path.join(dataDir, "accord.log");
  const args = [
    "serve",
    "--data-dir", dataDir,
    "--listen", `127.0.0.1:${port}`,
    "--public-url", base,
    "--scenario", scenario,
    ...SERVER_FLAGS,
    ...extraArgs,
  ];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ACCORD_")));
  const [cmd, argv] = hasSetpriv() ? ["setpriv", ["--pdeathsig", "TERM", bin, ...args]] : [bin, args];
  const fd = fs.openSync(log, "w");
  fs.writeSync(fd, `$ ${[bin, ...args].join(" ")}\n`);
  const child = spawn(cmd, argv, { cwd: REPO_ROOT, env, stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  const spawnError = new Promise((_, reject) => child.once("error", reject));
  spawnError.catch(() => {}); // seen by the race below; later errors show as an exit
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await Promise.race([waitReady(base, ca, { child, log }), spawnError]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, host, port, ca, dataDir, log, pid: child.pid, stop };
}
