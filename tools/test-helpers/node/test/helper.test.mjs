// @accord/test-helper's own tests, against a real `accord serve --test-mode`.
//
//   npm test                                  from tools/test-helpers/node
//   ACCORD_BIN=/path/to/accord npm test       the server binary (else target/debug/accord of this
//                                             checkout, else `accord` on PATH)
//
// The Node interop tier runs them too (interop/node/run.mjs). World: test/scenario.toml.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { AccordControlError, AccordStartError, httpsRequest, startAccord } from "@accord/test-helper";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIO = path.join(HERE, "scenario.toml");
const REPO_ROOT = path.resolve(HERE, "..", "..", "..", "..");

const TID = "7e570000-0000-4000-8000-000000000001";
const DAEMON = "7e570000-0000-4000-8000-0000000000a1";
const DAEMON_SECRET = "helper-daemon-secret-1";
const PUBLIC = "7e570000-0000-4000-8000-0000000000a2";
const ALICE = "alice@helper.test";
const ALICE_PASSWORD = "alice-Helper-pw-1";
const GRAPH_DEFAULT = "https://graph.microsoft.com/.default";
const SECOND_TID = "7e570000-0000-4000-8000-000000000002";
const SECOND_TENANT = `
[[tenant]]
id = "${SECOND_TID}"
display_name = "Second"
domains = ["second.test"]
`;
const TIMEOUT_MS = 60_000;

/** $ACCORD_BIN (a relative one from the repository root, as in interop/), else this checkout's build. */
function binary() {
  const named = process.env.ACCORD_BIN;
  if (named) return path.isAbsolute(named) || !named.includes("/") ? named : path.resolve(REPO_ROOT, named);
  const built = path.join(REPO_ROOT, "target", "debug", "accord");
  return fs.existsSync(built) ? built : undefined;
}

const form = (server, fields) =>
  httpsRequest(server.tokenEndpoint(TID), {
    method: "POST",
    ca: server.ca,
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });

const clientCredentials = (server) =>
  form(server, { grant_type: "client_credentials", client_id: DAEMON, client_secret: DAEMON_SECRET, scope: GRAPH_DEFAULT });

const ropc = (server) =>
  form(server, { grant_type: "password", client_id: PUBLIC, username: ALICE, password: ALICE_PASSWORD, scope: "User.Read" });

const discovery = (server, tenant) => httpsRequest(server.openidConfigurationUrl(tenant), { ca: server.ca });

describe("a server started by startAccord", { timeout: TIMEOUT_MS }, () => {
  let accord;
  before(async () => {
    accord = await startAccord({ bin: binary(), scenario: SCENARIO });
  });
  after(async () => {
    await accord?.stop();
  });
  beforeEach(async () => {
    await accord.control.reset();
  });

  test("answers on the URL it announced, trusting the CA it made", async () => {
    assert.match(accord.base, /^https:\/\/localhost:\d+$/);
    assert.equal(accord.base, `https://${accord.host}`);
    assert.equal(accord.host, `localhost:${accord.port}`);
    assert.equal(accord.caPath, path.join(accord.dataDir, "tls", "ca.pem"));
    assert.equal(accord.ca, fs.readFileSync(accord.caPath, "utf8"));
    assert.match(accord.ca, /^-----BEGIN CERTIFICATE-----/);
    assert.ok(fs.existsSync(accord.log));
    assert.equal(accord.authority(TID), `${accord.base}/${TID}`);
    assert.equal(accord.tokenEndpoint(TID), `${accord.base}/${TID}/oauth2/v2.0/token`);
    const r = await discovery(accord, TID);
    assert.equal(r.status, 200, r.body);
    const config = JSON.parse(r.body);
    assert.equal(config.issuer, `${accord.base}/${TID}/v2.0`);
    assert.equal(config.token_endpoint, accord.tokenEndpoint(TID));
  });

  test("advance moves the clock by what was asked", async () => {
    const before = await accord.control.clock();
    const moved = await accord.control.advance({ days: 1, hours: 2, minutes: 3, seconds: 4 });
    const step = ((1 * 24 + 2) * 60 + 3) * 60 + 4;
    assert.equal(moved.offsetSeconds - before.offsetSeconds, step);
    assert.ok(Date.parse(moved.now) - Date.parse(before.now) >= step * 1000, `${before.now} -> ${moved.now}`);
    assert.equal(typeof moved.ran, "object");
    assert.equal((await accord.control.clock()).offsetSeconds, moved.offsetSeconds);
  });

  test("advance by nothing is refused with the server's words", async () => {
    const before = (await accord.control.clock()).offsetSeconds;
    await assert.rejects(accord.control.advance({}), (e) => {
      assert.ok(e instanceof AccordControlError);
      assert.equal(e.status, 400);
      assert.match(e.error, /never goes back/);
      assert.match(e.message, /^POST \/_accord\/test\/clock\/advance answered HTTP 400: /);
      return true;
    });
    assert.equal((await accord.control.clock()).offsetSeconds, before);
  });

  test("reset takes the world back to the scenario", async () => {
    const loaded = await accord.control.loadScenario(SECOND_TENANT);
    assert.equal(loaded.loaded.tenants, 1);
    assert.equal((await discovery(accord, SECOND_TID)).status, 200);
    await accord.control.addFault({ match: { endpoint: "graph" }, action: { status: 503 } });
    assert.equal((await clientCredentials(accord)).status, 200);
    assert.ok((await accord.control.journal()).entries.length > 0);

    const reset = await accord.control.reset();
    assert.equal(reset.loaded.tenants, 1);
    assert.equal(reset.loaded.apps, 2);
    const gone = await discovery(accord, SECOND_TID);
    assert.equal(gone.status, 400, gone.body);
    assert.deepEqual(JSON.parse(gone.body).error_codes, [90002]); // tenant not found
    assert.equal((await discovery(accord, TID)).status, 200);
    assert.deepEqual(await accord.control.faults(), []);
    assert.deepEqual(await accord.control.journal(), { entries: [], last: 0 });
  });

  test("a bad scenario is a clear error and loads nothing", async () => {
    await assert.rejects(
      accord.control.loadScenario(`${SECOND_TENANT}\n[[tenant]]\ndisplay_name = "No Domains"\n`),
      (e) => {
        assert.ok(e instanceof AccordControlError);
        assert.equal(e.status, 400);
        assert.match(e.error, /missing field `domains`/);
        assert.match(e.message, /^POST \/_accord\/test\/scenario answered HTTP 400: scenario \(control API\)/);
        return true;
      },
    );
    assert.equal((await discovery(accord, SECOND_TID)).status, 400); // whole or not at all
    await assert.rejects(accord.control.loadScenario(Buffer.from("this is not [toml")), /HTTP 400: scenario \(control API\):1: .*expected/);
  });

  test("a fault rule fails a token request with the chosen AADSTS code", async () => {
    const rule = await accord.control.addFault({ match: { endpoint: "token", app: DAEMON }, times: 1, action: { aadsts: 65001 } });
    assert.ok(rule.id);
    assert.equal(rule.match.app, DAEMON);
    assert.equal(rule.action.aadsts, 65001);
    assert.deepEqual((await accord.control.faults()).map((r) => r.id), [rule.id]);

    const failed = await clientCredentials(accord);
    assert.equal(failed.status, 400, failed.body);
    const body = JSON.parse(failed.body);
    assert.equal(body.error, "invalid_grant");
    assert.deepEqual(body.error_codes, [65001]);
    assert.match(body.error_description, /^AADSTS65001/);

    assert.equal((await clientCredentials(accord)).status, 200); // times: 1, spent
    const [listed] = await accord.control.faults();
    assert.equal(listed.injected, 1);
    assert.deepEqual((await accord.control.journal()).entries.map((e) => e.kind), ["fault", "app_only"]);

    assert.equal(await accord.control.clearFaults(), undefined);
    assert.deepEqual(await accord.control.faults(), []);
    await assert.rejects(accord.control.addFault({ match: { endpoint: "nowhere" }, action: { aadsts: 65001 } }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.error, /match\.endpoint 'nowhere'/);
      return true;
    });
  });

  test("the journal shows each decision", async () => {
    const start = (await accord.control.journal()).last;
    assert.equal((await clientCredentials(accord)).status, 200);
    const refused = await ropc(accord);
    assert.equal(refused.status, 400, refused.body);
    assert.deepEqual(JSON.parse(refused.body).error_codes, [65001]);

    const journal = await accord.control.journal(start);
    const [issued, asked] = journal.entries;
    assert.equal(journal.entries.length, 2);
    assert.ok(issued.seq > start && asked.seq === journal.last && asked.seq > issued.seq);
    assert.deepEqual([issued.kind, issued.decision, issued.clientAppId, issued.tenantId], ["app_only", "issue", DAEMON, TID]);
    assert.equal(issued.asked, GRAPH_DEFAULT);
    assert.match(issued.ruleText, /User\.Read\.All/);
    // The token endpoint's answer: the engine would prompt, the client is told AADSTS65001.
    assert.deepEqual([asked.kind, asked.clientAppId, asked.user, asked.rule], ["token", PUBLIC, ALICE, "consent.missing"]);
    assert.deepEqual([asked.decision, asked.aadsts], ["refuse", 65001]);

    assert.deepEqual((await accord.control.journal(issued.seq)).entries.map((e) => e.seq), [asked.seq]);
    assert.deepEqual((await accord.control.journal(journal.last)).entries, []);
  });
});

describe("startAccord", { timeout: TIMEOUT_MS }, () => {
  test("keeps a data dir it was given and removes one it made", async () => {
    const given = fs.mkdtempSync(path.join(os.tmpdir(), "accord-helper-test-"));
    try {
      const server = await startAccord({ bin: binary(), scenario: SCENARIO, dataDir: given });
      assert.equal(server.dataDir, given);
      assert.equal((await server.control.clock()).offsetSeconds, 0);
      await server.stop();
      await server.stop(); // twice is fine
      assert.ok(fs.existsSync(path.join(given, "accord.log")));
      await assert.rejects(server.control.clock(), (e) => {
        assert.ok(e instanceof AccordControlError);
        assert.equal(e.status, null); // no answer: the server is gone
        assert.match(e.message, /^GET \/_accord\/test\/clock: no answer from https:\/\/localhost:\d+/);
        return true;
      });
    } finally {
      fs.rmSync(given, { recursive: true, force: true });
    }

    const made = await startAccord({ bin: binary(), scenario: SCENARIO });
    await made.stop();
    assert.equal(fs.existsSync(made.dataDir), false);
  });

  test("without testMode, the control API is a 404 that says so", async () => {
    const server = await startAccord({ bin: binary(), scenario: SCENARIO, testMode: false });
    try {
      await assert.rejects(server.control.clock(), (e) => {
        assert.ok(e instanceof AccordControlError);
        assert.equal(e.status, 404);
        assert.match(e.message, /HTTP 404: .*--test-mode/);
        return true;
      });
    } finally {
      await server.stop();
    }
  });

  test("a bad scenario file fails the start with the server's words", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "accord-helper-test-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const bad = path.join(dir, "bad.toml");
    fs.writeFileSync(bad, '[[tenant]]\ndisplay_name = "No Domains"\n');
    await assert.rejects(startAccord({ bin: binary(), scenario: bad, dataDir: path.join(dir, "data") }), (e) => {
      assert.ok(e instanceof AccordStartError);
      assert.match(e.message, /accord exited with status \d+/);
      assert.match(e.message, /missing field `domains`/);
      return true;
    });
  });

  test("a missing binary or scenario is named", async () => {
    await assert.rejects(startAccord({ bin: "/nonexistent/accord", scenario: SCENARIO }), (e) => {
      assert.ok(e instanceof AccordStartError);
      assert.match(e.message, /accord binary not found at \/nonexistent\/accord/);
      return true;
    });
    await assert.rejects(startAccord({ bin: "no-such-accord-binary", scenario: SCENARIO }), /no `no-such-accord-binary` on PATH/);
    await assert.rejects(startAccord({ bin: process.execPath, scenario: path.join(HERE, "nowhere.toml") }), /scenario file not found: .*nowhere\.toml/);
  });
});
