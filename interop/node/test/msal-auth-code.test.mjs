// @azure/msal-node ConfidentialClientApplication, authorization code with PKCE and nonce
// through Accord's real sign-in page, then the silent cache hit and a forced refresh
// (refresh_token grant).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import * as msal from "@azure/msal-node";

import { Browser, signIn } from "../signin.mjs";
import { GRAPH, TEST_TIMEOUT_MS, accord, confidentialApp, jwtPayload, recordFetch, scopesOf } from "../support.mjs";

test("msal-node auth code + PKCE + nonce: id token, account, silent, forced refresh", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { confidential: app, alice } = a.world;
  const scopes = ["User.Read"];
  const cca = confidentialApp(app);
  const { verifier, challenge } = await new msal.CryptoProvider().generatePkceCodes();
  const state = `st-${randomUUID()}`;
  const nonce = `n-${randomUUID()}`;

  const authUrl = await cca.getAuthCodeUrl({
    scopes,
    redirectUri: app.redirectUri,
    codeChallenge: challenge,
    codeChallengeMethod: "S256",
    state,
    nonce,
  });
  const q0 = new URL(authUrl);
  assert.equal(`${q0.origin}${q0.pathname}`, `${a.authority()}/oauth2/v2.0/authorize`, authUrl);
  assert.equal(q0.searchParams.get("code_challenge"), challenge, authUrl);
  assert.equal(q0.searchParams.get("nonce"), nonce, authUrl);

  // The browser part: Accord's sign-in form, no consent prompt (admin-consented app).
  const landed = await signIn(new Browser(), authUrl, app.redirectUri, alice.upn, alice.password);
  assert.ok(landed.location, landed.describe());
  const q = landed.params;
  assert.ok(q.code, `no code in ${landed.location}`);
  assert.equal(q.state, state, landed.location);
  assert.ok(q.client_info, `no client_info in ${landed.location}`);

  const rec = recordFetch();
  try {
    // msal-node 7 wants state and nonce in the request object too (client-compat §3.2).
    const result = await cca.acquireTokenByCode(
      { code: q.code, scopes, redirectUri: app.redirectUri, codeVerifier: verifier, state, nonce },
      { code: q.code, state: q.state, client_info: q.client_info },
    );
    assert.ok(result?.accessToken && result.idToken, JSON.stringify(result));
    assert.equal(result.fromCache, false);

    const id = result.idTokenClaims;
    assert.equal(id.preferred_username, alice.upn, JSON.stringify(id));
    assert.equal(id.nonce, nonce, JSON.stringify(id));
    assert.equal(id.aud, app.appId, JSON.stringify(id));
    assert.equal(id.tid, a.tid, JSON.stringify(id));
    assert.equal(id.oid, alice.id, JSON.stringify(id));
    assert.equal(id.iss, a.issuer(), JSON.stringify(id));

    // client_info → home account id "<oid>.<tid>"
    assert.equal(result.account.homeAccountId, `${alice.id}.${a.tid}`, JSON.stringify(result.account));
    assert.equal(result.account.tenantId, a.tid);
    assert.equal(result.account.username, alice.upn);
    assert.equal(result.account.environment, a.host);

    const at = jwtPayload(result.accessToken);
    assert.equal(at.aud, GRAPH, JSON.stringify(at));
    assert.ok(scopesOf(at).has("User.Read"), JSON.stringify(at));
    assert.equal(at.oid, alice.id, JSON.stringify(at));

    const codePost = rec.tokenPosts().at(-1);
    assert.equal(codePost.form.get("grant_type"), "authorization_code");
    assert.equal(codePost.form.get("code_verifier"), verifier);

    // The account is in the cache; a silent call is a cache hit.
    const accounts = await cca.getTokenCache().getAllAccounts();
    assert.deepEqual(accounts.map((x) => x.homeAccountId), [`${alice.id}.${a.tid}`]);
    const silent = await cca.acquireTokenSilent({ account: accounts[0], scopes });
    assert.equal(silent.fromCache, true);
    assert.equal(silent.accessToken, result.accessToken);

    // forceRefresh: the refresh_token grant, a new access token.
    const before = rec.tokenPosts().length;
    const refreshed = await cca.acquireTokenSilent({ account: accounts[0], scopes, forceRefresh: true });
    assert.equal(refreshed.fromCache, false);
    assert.ok(refreshed.accessToken, JSON.stringify(refreshed));
    assert.notEqual(refreshed.accessToken, result.accessToken, "forceRefresh must bring a new access token");
    assert.equal(jwtPayload(refreshed.accessToken).oid, alice.id);
    assert.equal(refreshed.account.homeAccountId, `${alice.id}.${a.tid}`);
    const posts = rec.tokenPosts().slice(before);
    assert.deepEqual(posts.map((p) => p.form.get("grant_type")), ["refresh_token"], rec.describe());

    assert.deepEqual(rec.offOrigin(a.base), [], `msal left the server:\n${rec.describe()}`);
  } finally {
    rec.restore();
  }
});
