// @azure/msal-node PublicClientApplication.acquireTokenByDeviceCode: msal-node derives the
// devicecode URL from the token endpoint, shows the message (here: the person reads it), and
// polls; a person answers on Accord's verification page meanwhile. Then a declined sign-in:
// msal-node must get authorization_declined (any error but authorization_pending ends its loop).

import assert from "node:assert/strict";
import { test } from "node:test";

import { Browser, parseForms } from "../signin.mjs";
import { TEST_TIMEOUT_MS, accord, jwtPayload, publicApp } from "../support.mjs";

/** The person: types the code, answers the confirmation, signs in, accepts any consent. */
async function answer(verificationUri, userCode, user, decision = "continue") {
  const browser = new Browser();
  let page = await browser.get(verificationUri);
  for (let step = 0; step < 8; step++) {
    const forms = page.status === 200 ? parseForms(page.text) : [];
    if (!forms.length) return page.text;
    const form = forms[0];
    const fields = form.fields.filter(([k]) => !["otc", "login", "passwd"].includes(k));
    if (form.names.has("otc")) fields.push(["otc", userCode.toLowerCase()]);
    if (form.names.has("login")) fields.push(["login", user.upn], ["passwd", user.password]);
    const values = form.submits.map(([, value]) => value);
    if (values.includes("continue")) fields.push(["decision", decision]);
    else if (values.includes("accept")) fields.push(["decision", "accept"]);
    page = await browser.post(new URL(form.action, page.url).toString(), fields);
  }
  throw new Error(`the verification pages did not end: ${page.text.slice(0, 2000)}`);
}

test("msal-node device code: the person answers, the device polls its tokens", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { public: app, alice } = a.world;
  const pca = publicApp(app);
  let answered = null;
  const result = await pca.acquireTokenByDeviceCode({
    scopes: ["User.Read"],
    deviceCodeCallback: (response) => {
      assert.equal(response.verificationUri, `${a.base}/devicelogin`);
      assert.ok(response.message.includes(response.userCode), response.message);
      answered = answer(response.verificationUri, response.userCode, alice);
    },
  });
  assert.match(await answered, /You have signed in/);
  assert.equal(result.account.username, alice.upn);
  assert.equal(jwtPayload(result.accessToken).preferred_username, alice.upn);
  assert.ok(result.idToken, "an id token");
});

test("msal-node device code: a declined sign-in ends the polling", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { public: app, alice } = a.world;
  const pca = publicApp(app);
  let answered = null;
  await assert.rejects(
    pca.acquireTokenByDeviceCode({
      scopes: ["User.Read"],
      deviceCodeCallback: (response) => {
        answered = answer(response.verificationUri, response.userCode, alice, "cancel");
      },
    }),
    (e) => e.errorCode === "authorization_declined" || /authorization_declined/.test(String(e)),
  );
  assert.match(await answered, /Sign-in cancelled/);
});
