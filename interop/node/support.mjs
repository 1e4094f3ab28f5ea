// What every test needs: the server run.mjs started, the world of interop/scenario.toml,
// unverified JWT decoding, a recorder of the requests a library makes, msal-node factories.

import fs from "node:fs";

import * as msal from "@azure/msal-node";
import { parse as parseToml } from "smol-toml";

import { SCENARIO } from "./server.mjs";

export const GRAPH = "https://graph.microsoft.com";
export const GRAPH_DEFAULT = `${GRAPH}/.default`;
export const TEST_TIMEOUT_MS = 30_000;

// ------------------------------------------------------------------ the world

/** What interop/scenario.toml declares, as the tests need it (change values there, not here). */
export function loadWorld(file = SCENARIO) {
  const doc = parseToml(fs.readFileSync(file, "utf8"));
  if (doc.tenant?.length !== 1) throw new Error(`${file}: expected exactly one [[tenant]]`);
  const [tenant] = doc.tenant;
  const users = Object.fromEntries(
    (tenant.user ?? []).map((u) => [u.upn, { upn: u.upn, password: u.password, id: u.id ?? null }]),
  );
  const grants = (tenant.grant ?? []).map((g) => ({
    app: g.app,
    resource: g.resource,
    delegated: g.delegated ?? [],
    application: g.application ?? [],
    for: g.for,
  }));
  const apps = Object.fromEntries(
    (tenant.app ?? []).map((a) => [
      a.display_name,
      {
        appId: a.app_id,
        displayName: a.display_name,
        secret: (a.secrets ?? [])[0] ?? null,
        redirectUri: a.redirect_uris[0],
        publicClient: Boolean(a.public_client),
        grants: grants.filter((g) => g.app === a.app_id),
      },
    ]),
  );
  // Calendar entries, in the order Graph lists a user's events by default (by start).
  const events = (tenant.event ?? [])
    .map((e) => ({ owner: e.owner, subject: e.subject, start: e.start, end: e.end }))
    .sort((x, y) => x.start.localeCompare(y.start));
  const domain = tenant.domains[0];
  const need = (table, key) => {
    if (!table[key]) throw new Error(`${file}: no ${key}`);
    return table[key];
  };
  return {
    tid: tenant.id,
    domain,
    users,
    apps,
    events,
    eventsOf: (upn) => events.filter((e) => e.owner === upn),
    alice: need(users, `alice@${domain}`),
    admin: need(users, `admin@${domain}`),
    confidential: need(apps, "Interop Confidential"),
    public: need(apps, "Interop Public"),
    noGrant: need(apps, "Interop No Grant"),
    calendarWriter: need(apps, "Interop Calendar Writer"),
  };
}

// ------------------------------------------------------------------ the server

let cached;

/**
 * The server run.mjs started (from ACCORD_INTEROP_* in the environment):
 *   { base, host, ca, dataDir, tid, world, authority(t), tokenEndpoint(t), issuer(t) }
 */
export function accord() {
  if (cached) return cached;
  const base = process.env.ACCORD_INTEROP_URL;
  if (!base) {
    throw new Error(
      "ACCORD_INTEROP_URL is not set: run this tier with `npm test` (run.mjs starts the server " +
        "and sets NODE_EXTRA_CA_CERTS before node starts), not with a bare `node --test`",
    );
  }
  const world = loadWorld();
  const url = new URL(base);
  cached = {
    base: url.origin,
    host: url.host, // localhost:PORT, what msal-node's knownAuthorities and aliases match
    ca: process.env.ACCORD_INTEROP_CA,
    dataDir: process.env.ACCORD_INTEROP_DATA_DIR || null,
    world,
    tid: world.tid,
    authority: (t = world.tid) => `${url.origin}/${t}`,
    tokenEndpoint: (t = world.tid) => `${url.origin}/${t}/oauth2/v2.0/token`,
    issuer: (t = world.tid) => `${url.origin}/${t}/v2.0`,
  };
  return cached;
}

// ------------------------------------------------------------------ tokens

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

/** The JOSE header of a compact JWS, unverified. */
export function jwtHeader(token) {
  return b64urlJson(token.split(".")[0]);
}

/** The claims of a compact JWS, unverified (jose verifies signatures in openid-client.test.mjs). */
export function jwtPayload(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${String(token).slice(0, 40)}...`);
  return b64urlJson(parts[1]);
}

export function scopesOf(claims) {
  return new Set((claims.scp ?? "").split(" ").filter(Boolean));
}

// ------------------------------------------------------------------ requests a library makes

/**
 * Wraps global fetch (msal-node 7, openid-client 6 and jose all call it) and records
 * { method, url, body } of every request until restore().
 */
export function recordFetch() {
  const original = globalThis.fetch;
  const calls = [];
  globalThis.fetch = async (input, init = {}) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const body = typeof init.body === "string" ? init.body : init.body instanceof URLSearchParams ? init.body.toString() : null;
    calls.push({ method: (init.method ?? input?.method ?? "GET").toUpperCase(), url, body });
    return original(input, init);
  };
  return {
    calls,
    /** Requests whose URL does not start with `origin`. */
    offOrigin: (origin) => calls.filter((c) => new URL(c.url).origin !== origin),
    /** POSTs to the token endpoint, with their form body parsed. */
    tokenPosts: () =>
      calls
        .filter((c) => c.method === "POST" && new URL(c.url).pathname.endsWith("/oauth2/v2.0/token"))
        .map((c) => ({ ...c, form: new URLSearchParams(c.body ?? "") })),
    describe: () => calls.map((c) => `${c.method} ${c.url}`).join("\n"),
    restore: () => {
      globalThis.fetch = original;
    },
  };
}

// ------------------------------------------------------------------ msal-node
// A new app object per test: msal-node caches discovery, tokens and throttling state.

const quietLogger = { loggerCallback: () => {}, piiLoggingEnabled: false, logLevel: msal.LogLevel.Error };

export function confidentialApp(app, { auth = {}, secret } = {}) {
  const a = accord();
  return new msal.ConfidentialClientApplication({
    auth: {
      clientId: app.appId,
      clientSecret: secret ?? app.secret,
      authority: a.authority(),
      knownAuthorities: [a.host],
      ...auth,
    },
    system: { loggerOptions: quietLogger },
  });
}

export function publicApp(app, { auth = {} } = {}) {
  const a = accord();
  return new msal.PublicClientApplication({
    auth: { clientId: app.appId, authority: a.authority(), knownAuthorities: [a.host], ...auth },
    system: { loggerOptions: quietLogger },
  });
}
