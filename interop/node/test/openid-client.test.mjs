// openid-client 6 (a strict, non-Microsoft OIDC client) and jose: discovery with an exact
// issuer match, authorization code + PKCE + nonce through Accord's sign-in page, refresh, and
// the id token's signature checked against the JWKS (openid-client itself does not check
// the signature of token-endpoint id tokens; client-compat.md §3.5).

import assert from "node:assert/strict";
import { test } from "node:test";

import * as jose from "jose";
import * as oidc from "openid-client";

import { Browser, signIn } from "../signin.mjs";
import { TEST_TIMEOUT_MS, accord, jwtHeader, jwtPayload, recordFetch } from "../support.mjs";

const SCOPE = "openid profile offline_access User.Read";

async function discover() {
  const a = accord();
  const app = a.world.confidential;
  // client_secret as a string: openid-client uses client_secret_post.
  return oidc.discovery(new URL(a.issuer()), app.appId, app.secret);
}

/** The whole browser round trip; resolves to { config, tokens, nonce }. */
async function codeFlow() {
  const a = accord();
  const { confidential: app, alice } = a.world;
  const config = await discover();
  const verifier = oidc.randomPKCECodeVerifier();
  const challenge = await oidc.calculatePKCECodeChallenge(verifier);
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: app.redirectUri,
    scope: SCOPE,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
    nonce,
  });
  assert.equal(`${url.origin}${url.pathname}`, `${a.authority()}/oauth2/v2.0/authorize`, url.href);

  const landed = await signIn(new Browser(), url.href, app.redirectUri, alice.upn, alice.password);
  assert.ok(landed.location, landed.describe());
  assert.ok(landed.params.code, landed.location);

  const tokens = await oidc.authorizationCodeGrant(config, new URL(landed.location), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  return { config, tokens, nonce, verifier };
}

test("openid-client strict discovery: exact issuer, endpoints under the tenant", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const config = await discover(); // throws unless issuer === the URL it discovered from
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, a.issuer());
  assert.equal(meta.authorization_endpoint, `${a.authority()}/oauth2/v2.0/authorize`);
  assert.equal(meta.token_endpoint, a.tokenEndpoint());
  assert.equal(meta.jwks_uri, `${a.authority()}/discovery/v2.0/keys`);
  assert.ok(meta.id_token_signing_alg_values_supported?.includes("RS256"), JSON.stringify(meta));
  assert.ok(meta.code_challenge_methods_supported?.includes("S256"), JSON.stringify(meta));
  assert.ok(meta.supportsPKCE("S256"), "the metadata must advertise S256");

  // Strictness is real: `organizations` publishes the "{tenantid}" issuer template, which
  // openid-client tolerates only for login.microsoftonline.com, so discovery there fails.
  await assert.rejects(
    oidc.discovery(new URL(`${a.base}/organizations/v2.0`), a.world.confidential.appId, a.world.confidential.secret),
    (e) => {
      assert.equal(e.code, "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED", String(e));
      assert.equal(e.cause?.attribute, "issuer", String(e));
      return true;
    },
  );
});

test("openid-client authorization code + PKCE + nonce, then refresh", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { confidential: app, alice } = a.world;
  const rec = recordFetch();
  let flow;
  try {
    flow = await codeFlow();
  } finally {
    rec.restore();
  }
  const { config, tokens, nonce, verifier } = flow;

  const codePost = rec.tokenPosts().at(-1);
  assert.equal(codePost.form.get("grant_type"), "authorization_code", rec.describe());
  assert.equal(codePost.form.get("code_verifier"), verifier);
  assert.equal(codePost.form.get("client_secret"), app.secret, "client_secret_post");

  assert.equal(tokens.token_type.toLowerCase(), "bearer");
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token, JSON.stringify(Object.keys(tokens)));
  assert.ok(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, `expires_in ${tokens.expires_in}`);
  const claims = tokens.claims(); // validated by openid-client: iss, aud, exp, iat, nonce
  assert.equal(claims.iss, a.issuer());
  assert.equal(claims.aud, app.appId);
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.preferred_username, alice.upn);
  assert.equal(claims.oid, alice.id);
  assert.equal(claims.tid, a.tid);
  assert.ok(tokens.scope?.split(" ").includes("User.Read"), tokens.scope);

  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token, JSON.stringify(Object.keys(refreshed)));
  assert.notEqual(refreshed.access_token, tokens.access_token, "a refresh brings a new access token");
  assert.ok(refreshed.refresh_token, "Accord rotates refresh tokens");
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, "the refresh token is rotated");
  assert.equal(jwtPayload(refreshed.access_token).oid, alice.id);
  if (refreshed.id_token) {
    assert.equal(refreshed.claims().sub, claims.sub, "the same user after refresh");
  }
});

test("jose verifies the id token against the JWKS; a tampered token fails", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const app = a.world.confidential;
  const { config, tokens } = await codeFlow();
  const meta = config.serverMetadata();
  const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));

  const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
    issuer: meta.issuer,
    audience: app.appId,
    algorithms: ["RS256"],
  });
  assert.equal(protectedHeader.alg, "RS256");
  assert.ok(protectedHeader.kid, "the id token names its key");
  assert.equal(payload.sub, tokens.claims().sub);
  assert.equal(payload.preferred_username, a.world.alice.upn);

  // The access token for Graph is signed with the same published key.
  const at = await jose.jwtVerify(tokens.access_token, jwks, { issuer: meta.issuer, algorithms: ["RS256"] });
  assert.equal(at.payload.oid, a.world.alice.id);

  // Same signature, other claims: the signature check must fail.
  const [h, , s] = tokens.id_token.split(".");
  const forged = Buffer.from(JSON.stringify({ ...jwtPayload(tokens.id_token), preferred_username: "mallory@evil.test" })).toString("base64url");
  await assert.rejects(jose.jwtVerify(`${h}.${forged}.${s}`, jwks, { issuer: meta.issuer, audience: app.appId }), jose.errors.JWSSignatureVerificationFailed);
  // One flipped bit in the signature.
  const sig = Buffer.from(s, "base64url");
  sig[sig.length - 1] ^= 1;
  await assert.rejects(
    jose.jwtVerify(`${h}.${tokens.id_token.split(".")[1]}.${sig.toString("base64url")}`, jwks, { issuer: meta.issuer, audience: app.appId }),
    jose.errors.JWSSignatureVerificationFailed,
  );
  // A genuine token for someone else is refused on its audience.
  await assert.rejects(jose.jwtVerify(tokens.id_token, jwks, { issuer: meta.issuer, audience: "someone-else" }), (e) => {
    assert.ok(e instanceof jose.errors.JWTClaimValidationFailed, String(e));
    assert.equal(e.claim, "aud");
    return true;
  });
  // A kid that is not published is refused.
  const unknownKid = Buffer.from(JSON.stringify({ ...jwtHeader(tokens.id_token), kid: "not-a-published-kid" })).toString("base64url");
  await assert.rejects(
    jose.jwtVerify(`${unknownKid}.${tokens.id_token.split(".").slice(1).join(".")}`, jwks, { issuer: meta.issuer, audience: app.appId }),
    jose.errors.JWKSNoMatchingKey,
  );
});
