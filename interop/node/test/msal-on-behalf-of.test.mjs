// @azure/msal-node ConfidentialClientApplication.acquireTokenOnBehalfOf: the Interop API receives
// Alice's token (issued for the API, through the public client) and calls Graph as her; a
// downstream permission the API holds no consent for is consent_required (AADSTS65001).

import assert from "node:assert/strict";
import { test } from "node:test";

import { TEST_TIMEOUT_MS, accord, confidentialApp, jwtPayload, publicApp } from "../support.mjs";

const API_SCOPE = "api://interop-api/Notes.Read";

async function aliceTokenForTheApi() {
  const a = accord();
  const { public: app, alice } = a.world;
  const result = await publicApp(app).acquireTokenByUsernamePassword({
    scopes: [API_SCOPE],
    username: alice.upn,
    password: alice.password,
  });
  assert.equal(jwtPayload(result.accessToken).aud, a.world.apps["Interop API"].appId);
  return result.accessToken;
}

test("msal-node on-behalf-of: the API calls Graph as its user", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const api = confidentialApp(a.world.apps["Interop API"]);
  const result = await api.acquireTokenOnBehalfOf({ oboAssertion: await aliceTokenForTheApi(), scopes: ["User.Read"] });
  const claims = jwtPayload(result.accessToken);
  assert.equal(claims.preferred_username, a.world.alice.upn);
  assert.equal(claims.azp, a.world.apps["Interop API"].appId);
});

test("msal-node on-behalf-of: no downstream consent is consent_required", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const api = confidentialApp(a.world.apps["Interop API"]);
  await assert.rejects(
    api.acquireTokenOnBehalfOf({ oboAssertion: await aliceTokenForTheApi(), scopes: ["Calendars.Read"] }),
    (e) => e.errorCode === "invalid_grant" && /AADSTS65001/.test(e.errorMessage) && e.subError === "consent_required",
  );
});
