// @azure/msal-node ConfidentialClientApplication with `clientCertificate` (issue 13): PS256 with
// an unpadded x5t#S256, and again sending the certificate as x5c. run.mjs registers a
// certificate made at run time on the confidential app (ACCORD_INTEROP_CERT_*).

import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";

import { GRAPH_DEFAULT, TEST_TIMEOUT_MS, accord, confidentialApp, jwtPayload } from "../support.mjs";

const keyPath = process.env.ACCORD_INTEROP_CERT_KEY;
const certPath = process.env.ACCORD_INTEROP_CERT;
const thumbprintSha256 = process.env.ACCORD_INTEROP_CERT_SHA256;
const skip = keyPath ? false : "no certificate registered (an external server, or no openssl command)";

async function certificateToken(clientCertificate) {
  const app = accord().world.confidential;
  const cca = confidentialApp(app, { auth: { clientSecret: undefined, clientCertificate } });
  const result = await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
  assert.ok(result?.accessToken, `no access token: ${JSON.stringify(result)}`);
  const claims = jwtPayload(result.accessToken);
  assert.equal(claims.azp ?? claims.appid, app.appId, JSON.stringify(claims));
  assert.equal(claims.azpacr, "2", "a certificate authenticated the client");
}

test("msal-node clientCertificate (thumbprintSha256, PS256)", { skip, timeout: TEST_TIMEOUT_MS }, async () => {
  await certificateToken({ thumbprintSha256, privateKey: fs.readFileSync(keyPath, "utf8") });
});

test("msal-node clientCertificate with x5c", { skip, timeout: TEST_TIMEOUT_MS }, async () => {
  await certificateToken({
    thumbprintSha256,
    privateKey: fs.readFileSync(keyPath, "utf8"),
    x5c: fs.readFileSync(certPath, "utf8"),
  });
});
