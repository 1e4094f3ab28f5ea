// @microsoft/microsoft-graph-client keeping a copy of alice's calendar in sync with Accord
// (entra-reference-wave2.md sections 8 and 11): calendarView, a delta round in pages of two
// through the client's PageIterator and a second round from its delta link, and the client's
// RetryHandler honouring Accord's throttling (429 + Retry-After) on a server of the test's own
// started with --graph-tenant-requests-per-10-seconds 4.
//
// The reader is the Interop Confidential app (application Calendars.Read, client credentials
// from msal-node); the change it should see is made by Interop Calendar Writer (application
// Calendars.ReadWrite) with plain fetch. Test files run in parallel and graph-client.test.mjs
// compares alice's whole calendar with interop/scenario.toml, so the writer here only edits
// the location of one of her events (which no other test reads), and puts it back.

import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";

import {
  Client,
  GraphError,
  MiddlewareFactory,
  PageIterator,
  RetryHandler,
} from "@microsoft/microsoft-graph-client";

import { startServer } from "../server.mjs";
import { GRAPH_DEFAULT, TEST_TIMEOUT_MS, accord, confidentialApp } from "../support.mjs";

const PAGE_SIZE = 2;
const PREFER = { Prefer: `odata.maxpagesize=${PAGE_SIZE}` };
const HOUR_MS = 3_600_000;

const iso = (ms) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");

/** A window around all of alice's [[tenant.event]] entries: an hour before the first, an hour after the last. */
function syncWindow() {
  const events = accord().world.eventsOf(accord().world.alice.upn);
  assert.ok(events.length > PAGE_SIZE, `interop/scenario.toml gives alice more than ${PAGE_SIZE} events`);
  const start = Math.min(...events.map((e) => Date.parse(e.start))) - HOUR_MS;
  const end = Math.max(...events.map((e) => Date.parse(e.end))) + HOUR_MS;
  return { events, query: { startDateTime: iso(start), endDateTime: iso(end) } };
}

/** An auth provider handing out the app's client-credentials token for `server` (default: run.mjs's). */
function appOnlyProvider(app, server = null) {
  const a = accord();
  const auth = server ? { authority: `${server.base}/${a.tid}`, knownAuthorities: [server.host] } : {};
  const cca = confidentialApp(app, { auth });
  return { getAccessToken: async () => (await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] })).accessToken };
}

/** Client options pointing the Graph client at `base` (Accord): baseUrl and customHosts. */
function onAccord(base) {
  return { baseUrl: `${base}/`, defaultVersion: "v1.0", customHosts: new Set([new URL(base).hostname]) };
}

/**
 * Wraps global fetch (the client's HTTPMessageHandler calls it) and records every Graph
 * answer: { url, status, headers, body } (body parsed when JSON). restore() puts fetch back.
 */
function recordGraph() {
  const original = globalThis.fetch;
  const answers = [];
  globalThis.fetch = async (input, init) => {
    const response = await original(input, init);
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (new URL(url).pathname.startsWith("/v1.0/")) {
      const type = response.headers.get("content-type") ?? "";
      const body = type.includes("json") ? await response.clone().json() : null;
      answers.push({ url, status: response.status, headers: response.headers, body });
    }
    return response;
  };
  return { answers, restore: () => (globalThis.fetch = original) };
}

/** Interop Calendar Writer editing alice's events with plain fetch. */
async function writer() {
  const a = accord();
  const token = await appOnlyProvider(a.world.calendarWriter).getAccessToken();
  const events = `${a.base}/v1.0/users/${a.world.alice.id}/events`;
  return {
    async update(id, fields) {
      const r = await fetch(`${events}/${id}`, {
        method: "PATCH",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify(fields),
      });
      const body = await r.json();
      assert.equal(r.status, 200, JSON.stringify(body));
      return body;
    },
  };
}

test("graph-sync calendarView: alice's events in the sync window through api().query()", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { alice } = a.world;
  const { events, query } = syncWindow();
  const client = Client.initWithMiddleware({ ...onAccord(a.base), authProvider: appOnlyProvider(a.world.confidential) });

  const view = await client.api(`/users/${alice.id}/calendarView`).query(query).get();
  assert.deepEqual(view.value.map((e) => e.subject), events.map((e) => e.subject));
  view.value.forEach((e, i) => {
    assert.ok(e.start.dateTime.startsWith(events[i].start.replace(/Z$/, "")), `${e.start.dateTime} vs ${events[i].start}`);
    assert.equal(e.organizer?.emailAddress?.address?.toLowerCase(), alice.upn, JSON.stringify(e.organizer));
  });

  // The same by UPN, with a window holding the second event only.
  const second = await client
    .api(`/users/${alice.upn}/calendarView`)
    .query({ startDateTime: events[1].start, endDateTime: events[1].end })
    .get();
  assert.deepEqual(second.value.map((e) => e.subject), [events[1].subject]);
});

test("graph-sync delta: PageIterator over pages of two, then only the change from the delta link", { timeout: TEST_TIMEOUT_MS }, async () => {
  const a = accord();
  const { alice } = a.world;
  const { events, query } = syncWindow();
  const client = Client.initWithMiddleware({ ...onAccord(a.base), authProvider: appOnlyProvider(a.world.confidential) });
  const delta = `/users/${alice.id}/calendarView/delta`;
  const edits = await writer();
  const rec = recordGraph();
  let restoreLocation = null;
  try {
    // Initial round: the first page by hand, the rest through the client's PageIterator, which
    // follows @odata.nextLink with the same Prefer header and keeps @odata.deltaLink.
    const first = await client.api(delta).headers(PREFER).query(query).get();
    const items = [];
    const pages = new PageIterator(client, first, (e) => (items.push(e), true), { headers: PREFER });
    await pages.iterate();
    assert.ok(pages.isComplete(), "the iterator reached the end of the round");
    const deltaLink = pages.getDeltaLink();
    assert.match(deltaLink ?? "", /\/calendarView\/delta\?\$deltatoken=/, `deltaLink: ${deltaLink}`);

    const round = rec.answers.filter((r) => new URL(r.url).pathname.endsWith("/calendarView/delta"));
    const sizes = round.map((r) => r.body?.value?.length);
    assert.ok(round.length >= 2, `a round of ${items.length} events in pages of ${PAGE_SIZE}: ${round.length} page(s)`);
    for (const page of round) {
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.ok(page.body.value.length <= PAGE_SIZE, `page sizes ${sizes}`);
      assert.equal(page.headers.get("preference-applied"), `odata.maxpagesize=${PAGE_SIZE}`);
    }
    assert.ok(round.slice(0, -1).every((p) => p.body["@odata.nextLink"] && !p.body["@odata.deltaLink"]), `page sizes ${sizes}`);
    assert.equal(round.at(-1).body["@odata.deltaLink"], deltaLink);

    // Every event of the window, once.
    const ids = items.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `an event came twice: ${ids}`);
    assert.deepEqual(items.map((e) => e.subject).sort(), events.map((e) => e.subject).sort());
    assert.ok(items.every((e) => !("@removed" in e)), "an initial round holds no removals");
    const view = await client.api(`/users/${alice.id}/calendarView`).query(query).get();
    assert.deepEqual([...ids].sort(), view.value.map((e) => e.id).sort(), "the round holds what calendarView lists");

    // The writer moves one event to another room.
    const target = items.find((e) => e.subject === events[1].subject);
    const room = `Interop room ${Math.random().toString(36).slice(2, 8)}`;
    restoreLocation = () => edits.update(target.id, { location: { displayName: target.location?.displayName ?? "" } });
    await edits.update(target.id, { location: { displayName: room } });

    // The next round, from the delta link: that event only, in full.
    const changes = await client.api(deltaLink).headers(PREFER).get();
    assert.equal(changes.value.length, 1, JSON.stringify(changes.value.map((e) => [e.id, e.subject, e["@removed"]])));
    const [moved] = changes.value;
    assert.equal(moved.id, target.id);
    assert.equal(moved["@removed"], undefined, JSON.stringify(moved));
    assert.equal(moved.subject, target.subject);
    assert.equal(moved.location?.displayName, room, JSON.stringify(moved.location));
    assert.equal(moved.start.dateTime, target.start.dateTime);
    assert.equal(changes["@odata.nextLink"], undefined);
    assert.match(changes["@odata.deltaLink"] ?? "", /\$deltatoken=/);
    assert.notEqual(changes["@odata.deltaLink"], deltaLink);
  } finally {
    rec.restore();
    if (restoreLocation) await restoreLocation();
  }
});

test("graph-sync throttling: RetryHandler rides out 429 + Retry-After; without it the 429 surfaces", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = accord();
  if (!a.dataDir) {
    t.skip("needs the data dir of the server run.mjs started (its CA signs the throttled server too)");
    return;
  }
  // A server of this test's own that lets an app make 4 Graph requests per 10 s in a tenant
  // (one back every 2.5 s): sequential requests are throttled deterministically, whatever the
  // machine's speed. It reuses the TLS material of run.mjs's server: this process trusts that
  // CA only (NODE_EXTRA_CA_CERTS).
  const allowance = 4;
  const server = await startServer({
    extraArgs: ["--graph-tenant-requests-per-10-seconds", String(allowance)],
    tlsFrom: a.dataDir,
  });
  let passed = false;
  const rec = recordGraph();
  try {
    const { alice, confidential } = a.world;
    const { events, query } = syncWindow();
    const authProvider = appOnlyProvider(confidential, server);
    await authProvider.getAccessToken(); // the token first: what follows only calls Graph
    const read = (client) => client.api(`/users/${alice.id}/calendarView`).query(query).get();
    const checkThrottled = (status, headers, code) => {
      assert.equal(status, 429);
      const wait = Number(headers.get("retry-after"));
      assert.ok(Number.isInteger(wait) && wait >= 1 && wait <= 3, `Retry-After ${headers.get("retry-after")}`);
      assert.equal(code, "TooManyRequests");
    };

    // The default middleware chain (AuthenticationHandler, RetryHandler, RedirectHandler, ...):
    // two more reads than the allowance, one after the other, all end in a 200.
    const retrying = Client.initWithMiddleware({ ...onAccord(server.base), authProvider });
    for (let i = 0; i < allowance + 2; i++) {
      const view = await read(retrying);
      assert.deepEqual(view.value.map((e) => e.subject), events.map((e) => e.subject));
    }
    const throttled = rec.answers.filter((r) => r.status === 429);
    t.diagnostic(`with RetryHandler: ${throttled.length} answers 429, ${rec.answers.length} in all`);
    assert.ok(throttled.length >= 2, `the reads beyond the allowance were throttled (statuses: ${rec.answers.map((r) => r.status)})`);
    assert.equal(rec.answers.filter((r) => r.status === 200).length, allowance + 2, "one 200 per read, after its retries");
    for (const r of throttled) checkThrottled(r.status, r.headers, r.body?.error?.code);

    // The same chain without the RetryHandler: the allowance is spent, so the 429 reaches the
    // caller as a GraphError.
    const middleware = MiddlewareFactory.getDefaultMiddlewareChain(authProvider).filter((m) => !(m instanceof RetryHandler));
    assert.equal(middleware.length, MiddlewareFactory.getDefaultMiddlewareChain(authProvider).length - 1);
    const plain = Client.initWithMiddleware({ ...onAccord(server.base), middleware });
    const refused = [];
    for (let i = 0; i < allowance + 1; i++) {
      try {
        await read(plain);
      } catch (e) {
        refused.push(e);
      }
    }
    t.diagnostic(`without RetryHandler: ${refused.length} of ${allowance + 1} refused`);
    assert.ok(refused.length >= 1, "without a RetryHandler a read beyond the allowance is refused");
    for (const e of refused) {
      assert.ok(e instanceof GraphError, `expected a GraphError, got ${e}`);
      checkThrottled(e.statusCode, e.headers, e.code);
    }
    passed = true;
  } finally {
    rec.restore();
    await server.stop();
    if (passed) fs.rmSync(server.dataDir, { recursive: true, force: true });
    else t.diagnostic(`throttled server's log: ${server.log}`);
  }
});
