// @azure/msal-node on revoked consent: the public client gets tokens (ROPC), its delegated
// grant is then deleted, and the next refresh must fail the way Entra's does, which msal-node
// surfaces as InteractionRequiredAuthError (invalid_grant, suberror consent_required, AADSTS65001).
//
// Accord has no revoke command yet, so the test revokes in the store itself: it deletes the
// app's rows of `delegated_grants` in <data-dir>/accord.db (SQLite, WAL) with better-sqlite3
// while the server runs. Only this test uses "Interop Public", so the others are unaffected.

import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";

import * as msal from "@azure/msal-node";

import { TEST_TIMEOUT_MS, accord, dbPath, jwtPayload, publicApp, recordFetch } from "../support.mjs";

let Database = null;
let noSqlite = null;
try {
  Database = (await import("better-sqlite3")).default;
} catch (e) {
  noSqlite = `better-sqlite3 is not installed or does not load (${e.message.split("\n")[0]})`;
}

function skipReason() {
  if (noSqlite) return noSqlite;
  const db = dbPath();
  if (!db) return "no ACCORD_INTEROP_DATA_DIR: the server's SQLite database is needed to revoke";
  if (!fs.existsSync(db)) return `${db} does not exist (a server on PostgreSQL?)`;
  return false;
}

/** Deletes every delegated grant of `appId`'s service principal in the tenant; returns how many. */
function revokeDelegatedGrants(tid, appId) {
  const db = new Database(dbPath(), { fileMustExist: true, timeout: 5000 });
  try {
    return db
      .prepare(
        `DELETE FROM delegated_grants
          WHERE tenant_id = ?
            AND client_sp_id IN (SELECT id FROM service_principals WHERE tenant_id = ? AND app_id = ?)`,
      )
      .run(tid, tid, appId).changes;
  } finally {
    db.close();
  }
}

test("msal-node refresh after consent is revoked: InteractionRequiredAuthError consent_required", { timeout: TEST_TIMEOUT_MS, skip: skipReason() }, async () => {
  const a = accord();
  const { public: app, alice } = a.world;
  const scopes = ["User.Read"];
  const pca = publicApp(app);

  const ropc = await pca.acquireTokenByUsernamePassword({ scopes, username: alice.upn, password: alice.password });
  assert.ok(ropc?.accessToken, JSON.stringify(ropc));
  assert.equal(ropc.account.homeAccountId, `${alice.id}.${a.tid}`, JSON.stringify(ropc.account));
  assert.equal(jwtPayload(ropc.accessToken).azp ?? jwtPayload(ropc.accessToken).appid, app.appId);

  // With the grant in place a forced refresh works.
  const account = ropc.account;
  const ok = await pca.acquireTokenSilent({ account, scopes, forceRefresh: true });
  assert.equal(ok.fromCache, false);
  assert.notEqual(ok.accessToken, ropc.accessToken);

  const deleted = revokeDelegatedGrants(a.tid, app.appId);
  assert.ok(deleted >= 1, `no delegated grant of ${app.appId} found in ${dbPath()}`);

  const rec = recordFetch();
  try {
    await assert.rejects(pca.acquireTokenSilent({ account, scopes, forceRefresh: true }), (e) => {
      const detail = `${e?.name} ${e?.errorCode} ${e?.subError} ${e?.errorMessage}`;
      assert.ok(e instanceof msal.InteractionRequiredAuthError, `expected InteractionRequiredAuthError, got ${detail}`);
      assert.equal(e.errorCode, "invalid_grant", detail);
      assert.equal(e.subError, "consent_required", detail);
      assert.match(e.errorMessage, /^AADSTS65001\b/, detail);
      return true;
    });
    const posts = rec.tokenPosts();
    assert.deepEqual(posts.map((p) => p.form.get("grant_type")), ["refresh_token"], rec.describe());
  } finally {
    rec.restore();
  }
});
