// @azure/msal-node ConfidentialClientApplication, client credentials (Graph .default):
// once with knownAuthorities, once with cloudDiscoveryMetadata taken from Accord's own
// instance-discovery endpoint (client-compat.md §3.2), so that endpoint meets msal's parser.

import assert from "node:assert/strict";
import { test } from "node:test";

import { GRAPH, GRAPH_DEFAULT, TEST_TIMEOUT_MS, accord, confidentialApp, jwtPayload, recordFetch } from "../support.mjs";

function expectedRoles(app) {
  return new Set(app.grants.filter((g) => g.resource === GRAPH).flatMap((g) => g.application));
}

/** Two client-credential calls: the first from the server, the second from msal's cache. */
async function twoCalls(cca, app, rec) {
  const a = accord();
  const first = await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
  assert.ok(first?.accessToken, `no access token: ${JSON.stringify(first)}`);
  assert.equal(first.fromCache, false, "the first call must go to the server");
  assert.equal(first.tokenType, "Bearer");
  assert.ok(first.expiresOn instanceof Date && first.expiresOn > new Date(Date.now() + 60_000), `expiresOn ${first.expiresOn}`);

  const claims = jwtPayload(first.accessToken);
  assert.equal(claims.tid, a.tid, JSON.stringify(claims));
  assert.equal(claims.iss, a.issuer(), JSON.stringify(claims));
  assert.equal(claims.azp ?? claims.appid, app.appId, JSON.stringify(claims));
  assert.equal(claims.aud, GRAPH, JSON.stringify(claims));
  assert.equal(claims.idtyp, "app", JSON.stringify(claims));
  assert.equal(claims.scp, undefined, "an app-only token carries roles, not scp");
  const roles = expectedRoles(app);
  assert.ok(roles.size > 0, "interop/scenario.toml grants the app application permissions");
  assert.deepEqual(new Set(claims.roles), roles, JSON.stringify(claims));

  const second = await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
  assert.equal(second.fromCache, true, "the second call must be served from msal's cache");
  assert.equal(second.accessToken, first.accessToken);

  assert.deepEqual(rec.offOrigin(a.base), [], `msal left the server:\n${rec.describe()}`);
  const posts = rec.tokenPosts();
  assert.equal(posts.length, 1, `exactly one token request expected:\n${rec.describe()}`);
  assert.equal(posts[0].url.split("?")[0], a.tokenEndpoint());
  assert.equal(posts[0].form.get("grant_type"), "client_credentials");
  assert.equal(posts[0].form.get("client_id"), app.appId);
  return claims;
}

test("msal-node client credentials with knownAuthorities: tid and roles, then the cache", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const app = a.world.confidential;
  const rec = recordFetch();
  try {
    const cca = confidentialApp(app); // knownAuthorities: ["localhost:PORT"]
    await twoCalls(cca, app, rec);
    // knownAuthorities skips instance discovery; tenant discovery is ours.
    assert.ok(
      rec.calls.some((c) => c.url === `${a.issuer()}/.well-known/openid-configuration`),
      `msal did not read our openid-configuration:\n${rec.describe()}`,
    );
    assert.ok(!rec.calls.some((c) => c.url.includes("/discovery/instance")), rec.describe());
  } finally {
    rec.restore();
  }
});

test("msal-node client credentials with cloudDiscoveryMetadata from /common/discovery/instance", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const app = a.world.confidential;
  const authorize = `${a.authority()}/oauth2/v2.0/authorize`;
  const url = `${a.base}/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(authorize)}`;
  const res = await fetch(url);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const body = JSON.parse(text);
  assert.equal(body.tenant_discovery_endpoint, `${a.issuer()}/.well-known/openid-configuration`, text);
  assert.ok(Array.isArray(body.metadata) && body.metadata.length > 0, text);
  assert.ok(
    body.metadata.some((m) => m.aliases?.includes(a.host) && m.preferred_network === a.host),
    `msal-node matches aliases against host:port (${a.host}): ${text}`,
  );

  const rec = recordFetch();
  try {
    const cca = confidentialApp(app, { auth: { knownAuthorities: [], cloudDiscoveryMetadata: text } });
    await twoCalls(cca, app, rec);
    // The metadata came from us, so msal asked nobody (in particular not login.microsoftonline.com).
    assert.ok(!rec.calls.some((c) => c.url.includes("/discovery/instance")), rec.describe());
    assert.ok(rec.calls.some((c) => c.url === body.tenant_discovery_endpoint), rec.describe());
  } finally {
    rec.restore();
  }
});
