// @microsoft/microsoft-graph-client reading calendars from Accord, set up the way its users
// would point it at a Graph-compatible host: `baseUrl` = Accord, `customHosts` = Accord's host
// name (the client attaches the token only to Graph's own hosts and to custom hosts), and an
// auth provider fed by msal-node (client credentials for app-only calls; the auth code flow,
// then acquireTokenSilent, for delegated ones).

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, GraphError } from "@microsoft/microsoft-graph-client";

import { Browser, signIn } from "../signin.mjs";
import { GRAPH_DEFAULT, TEST_TIMEOUT_MS, accord, confidentialApp, jwtPayload, scopesOf } from "../support.mjs";

/** A Graph client against Accord; `tokens()` says which access tokens the provider handed out. */
function graphClient(getToken, { customHosts = true } = {}) {
  const a = accord();
  const handedOut = [];
  const client = Client.initWithMiddleware({
    baseUrl: `${a.base}/`,
    defaultVersion: "v1.0",
    // The host name only: the client compares it with the URL's host without the port.
    ...(customHosts ? { customHosts: new Set([new URL(a.base).hostname]) } : {}),
    authProvider: {
      getAccessToken: async () => {
        const token = await getToken();
        handedOut.push(token);
        return token;
      },
    },
  });
  return { client, tokens: () => handedOut };
}

function appOnlyProvider() {
  const cca = confidentialApp(accord().world.confidential);
  return async () => (await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] })).accessToken;
}

/** Graph's dateTime is "2026-12-01T09:00:00.0000000" with timeZone "UTC"; the scenario's is RFC 3339. */
function assertEventsMatch(got, expected, owner) {
  const seen = got.map((e) => `${e.subject} ${e.start?.dateTime} ${e.start?.timeZone}`);
  assert.deepEqual(got.map((e) => e.subject), expected.map((e) => e.subject), seen.join("\n"));
  got.forEach((e, i) => {
    assert.ok(e.id, `event without id: ${JSON.stringify(e)}`);
    assert.equal(e.start.timeZone, "UTC", JSON.stringify(e.start));
    assert.ok(e.start.dateTime.startsWith(expected[i].start.replace(/Z$/, "")), `${e.start.dateTime} vs ${expected[i].start}`);
    assert.ok(e.end.dateTime.startsWith(expected[i].end.replace(/Z$/, "")), `${e.end.dateTime} vs ${expected[i].end}`);
    assert.equal(e.organizer?.emailAddress?.address?.toLowerCase(), owner, JSON.stringify(e.organizer));
  });
}

test("graph-client app-only: users/{id}/calendar/events and calendarView", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { alice } = a.world;
  const expected = a.world.eventsOf(alice.upn);
  assert.ok(expected.length >= 2, "interop/scenario.toml gives alice at least two events");
  const { client, tokens } = graphClient(appOnlyProvider());

  const events = await client.api(`/users/${alice.id}/calendar/events`).get();
  assert.match(events["@odata.context"], /\$metadata#users\('[^']+'\)\/calendar\/events$/, events["@odata.context"]);
  assertEventsMatch(events.value, expected, alice.upn);

  // A window that holds the first event only: it ends when the second one starts.
  const view = await client
    .api(`/users/${alice.id}/calendarView`)
    .query({ startDateTime: expected[0].start, endDateTime: expected[1].start })
    .get();
  assertEventsMatch(view.value, expected.slice(0, 1), alice.upn);

  // Every call carried an app-only Graph token from msal-node.
  assert.equal(tokens().length, 2);
  const at = jwtPayload(tokens()[0]);
  assert.ok(at.roles?.includes("Calendars.Read"), JSON.stringify(at));
  assert.equal(at.scp, undefined, JSON.stringify(at));
});

test("graph-client without customHosts sends no token to Accord: 401", { timeout: TEST_TIMEOUT_MS }, async () => {
  const { alice } = accord().world;
  const { client, tokens } = graphClient(appOnlyProvider(), { customHosts: false });
  await assert.rejects(client.api(`/users/${alice.id}/calendar/events`).get(), (e) => {
    assert.ok(e instanceof GraphError, `expected a GraphError, got ${e}`);
    assert.equal(e.statusCode, 401, `${e.statusCode} ${e.code} ${e.message}`);
    assert.equal(e.code, "InvalidAuthenticationToken", `${e.code} ${e.message}`);
    return true;
  });
  assert.deepEqual(tokens(), [], "the client must not ask for a token for a host it does not know");
});

test("graph-client delegated: me/events with msal-node tokens from the auth code flow", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { confidential: app, alice } = a.world;
  const scopes = ["User.Read", "Calendars.Read"];
  const cca = confidentialApp(app);
  const authUrl = await cca.getAuthCodeUrl({ scopes, redirectUri: app.redirectUri });
  const landed = await signIn(new Browser(), authUrl, app.redirectUri, alice.upn, alice.password);
  assert.ok(landed.location && landed.params.code, landed.describe());
  const { account } = await cca.acquireTokenByCode({ code: landed.params.code, scopes, redirectUri: app.redirectUri });

  const { client, tokens } = graphClient(async () => (await cca.acquireTokenSilent({ account, scopes })).accessToken);
  const me = await client.api("/me").select("id,userPrincipalName").get();
  assert.equal(me.id, alice.id, JSON.stringify(me));
  assert.equal(me.userPrincipalName, alice.upn, JSON.stringify(me));

  const events = await client.api("/me/events").get();
  assertEventsMatch(events.value, a.world.eventsOf(alice.upn), alice.upn);

  const at = jwtPayload(tokens().at(-1));
  assert.equal(at.oid, alice.id, JSON.stringify(at));
  assert.ok(scopesOf(at).has("Calendars.Read"), JSON.stringify(at));
});

test("graph-client $batch through BatchRequestContent: each part answered as if alone", { timeout: TEST_TIMEOUT_MS }, async () => {
  const { BatchRequestContent, BatchResponseContent } = await import("@microsoft/microsoft-graph-client");
  const a = accord();
  const { alice } = a.world;
  const { client } = graphClient(appOnlyProvider());
  const base = `${a.base}/v1.0`;
  const batch = new BatchRequestContent([
    { id: "1", request: new Request(`${base}/users/${alice.id}?$select=displayName`, { method: "GET" }) },
    { id: "2", request: new Request(`${base}/users/${alice.id}/calendar/events?$top=1`, { method: "GET" }) },
    // The app holds no permission to list groups: 403 inside, the batch still 200.
    { id: "3", request: new Request(`${base}/groups`, { method: "GET" }) },
  ]);
  // The client accepts serial chains: each request after the previous one.
  batch.addDependency("2", "1");
  batch.addDependency("3", "2");
  const raw = await client.api("/$batch").post(await batch.getContent());
  const answers = new BatchResponseContent(raw);
  const me = answers.getResponseById("1");
  assert.equal(me.status, 200);
  assert.equal((await me.json()).displayName, "Alice Interop");
  const events = answers.getResponseById("2");
  assert.equal(events.status, 200);
  assert.ok(Array.isArray((await events.json()).value));
  assert.equal(answers.getResponseById("3").status, 403);
});
