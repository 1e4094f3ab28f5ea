// @azure/msal-node on revoked consent: the public client gets tokens (ROPC), its delegated
// grant is then deleted, and the next refresh must fail the way Entra's does, which msal-node
// surfaces as InteractionRequiredAuthError (invalid_grant, suberror consent_required, AADSTS65001).
//
// The grant is revoked the way an administrator's script would: an app-only Graph token of
// "Interop Confidential" (DelegatedPermissionGrant.ReadWrite.All, granted in interop/scenario.toml)
// lists the public app's oauth2PermissionGrants and deletes them. Only this test uses
// "Interop Public", so the others are unaffected.

import assert from "node:assert/strict";
import { test } from "node:test";

import * as msal from "@azure/msal-node";

import { TEST_TIMEOUT_MS, accord, confidentialApp, jwtPayload, publicApp, recordFetch } from "../support.mjs";

/** GETs or DELETEs a Graph path at Accord with `token`; returns the parsed body (or null). */
async function graph(method, path, token) {
  const a = accord();
  const res = await fetch(`${a.base}/v1.0${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Deletes every delegated grant of `appId`'s service principal through Graph; returns how many. */
async function revokeDelegatedGrants(appId) {
  const a = accord();
  const admin = confidentialApp(a.world.confidential);
  const { accessToken } = await admin.acquireTokenByClientCredential({
    scopes: ["https://graph.microsoft.com/.default"],
  });
  const sps = await graph("GET", `/servicePrincipals?$filter=${encodeURIComponent(`appId eq '${appId}'`)}`, accessToken);
  assert.equal(sps.value.length, 1, JSON.stringify(sps));
  const filter = encodeURIComponent(`clientId eq '${sps.value[0].id}'`);
  const grants = await graph("GET", `/oauth2PermissionGrants?$filter=${filter}`, accessToken);
  for (const g of grants.value) {
    await graph("DELETE", `/oauth2PermissionGrants/${g.id}`, accessToken);
  }
  return grants.value.length;
}

test("msal-node refresh after consent is revoked: InteractionRequiredAuthError consent_required", { timeout: TEST_TIMEOUT_MS }, async () => {
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

  const deleted = await revokeDelegatedGrants(app.appId);
  assert.ok(deleted >= 1, `no delegated grant of ${app.appId} found through Graph`);

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
