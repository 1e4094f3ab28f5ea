// Starts one real `accord serve` for the Node interop tier and stops it again, through the Node
// test helper vendors use (@accord/test-helper, tools/test-helpers/node):
//
//   $ACCORD_BIN serve --data-dir <tmp> --listen 127.0.0.1:0 --public-url https://localhost:0
//                     --scenario interop/scenario.toml --test-mode
//                     --allow-http-notification-urls --subscription-review-ms 500
//
// The server picks its port and announces it (`accord listening on ADDR as URL`); the helper
// reads that line, so no port is chosen ahead and raced for.
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

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { httpsGet, READY_TIMEOUT_MS, startAccord, tail, waitReady } from "@accord/test-helper";

export { httpsGet, READY_TIMEOUT_MS, tail, waitReady };

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, "..", "..");
export const SCENARIO = path.resolve(HERE, "..", "scenario.toml");

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

/** A port free right now on 127.0.0.1 (startServer no longer needs one: the server picks its own). */
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

/**
 * Starts the server with a fresh data dir. Resolves to
 *   { base, host, port, ca, dataDir, log, pid, control, stop() }
 * where `ca` is the path of <data-dir>/tls/ca.pem, `control` the test-mode control API client
 * (@accord/test-helper's controlClient) and stop() ends the server (SIGTERM, then SIGKILL after
 * 10 s). The server is also killed when this process exits.
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
  // startAccord adds --test-mode; the data dir is ours (run.mjs keeps it when a test failed).
  const server = await startAccord({ bin, scenario, dataDir, args: [...SERVER_FLAGS, ...extraArgs], cwd: REPO_ROOT });
  const { base, host, port, caPath: ca, log, pid, control, stop } = server;
  return { base, host, port, ca, dataDir, log, pid, control, stop };
}
