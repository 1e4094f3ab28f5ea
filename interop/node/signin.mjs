// Drive Accord's sign-in (and consent) pages over plain HTTP, like a browser without JS.
// The Node twin of interop/python/signin.py.
//
// The pages are server-rendered HTML forms. The driver knows no page by name. On every 200
// HTML page that has a form it fills `login` and `passwd` when the form has those inputs,
// keeps every other input's value (hidden `flow` and `csrf`), presses the "accept"-like
// submit button if there are several, and posts to the form's action. It follows redirects
// that stay on the server, keeping cookies between requests, and stops at the first redirect
// to the app's redirect_uri, or at a page it cannot go on from (an error page).

// Buttons we press when a form offers several (consent: Accept / Cancel).
const POSITIVE = /accept|allow|yes|continue|consent|approve|sign.?in|next|submit|ok\b/i;
const NEGATIVE = /cancel|deny|decline|reject|\bno\b|back/i;
const NON_TEXT_INPUTS = new Set(["submit", "button", "image", "reset", "file"]);

// ------------------------------------------------------------------ a tiny HTML form parser

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

export function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === "#") {
      const n = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(n) ? String.fromCodePoint(n) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

const ATTR = /([^\s"'<>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
const TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'<>\/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*\/?>/g;

function parseAttrs(text) {
  const attrs = {};
  for (const m of text.matchAll(ATTR)) {
    const name = m[1].toLowerCase();
    if (!(name in attrs)) attrs[name] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return attrs;
}

/**
 * The forms of a page: [{ action, method, fields: [[name, value]], names: Set, submits: [[name, value, label]] }].
 * `fields` are what a browser sends without the user typing (hidden and prefilled inputs,
 * checked boxes, textareas); the submit button is added separately.
 */
export function parseForms(markup) {
  const html = markup.replace(/<!--[\s\S]*?-->/g, "").replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, "");
  const forms = [];
  let form = null;
  let open = null; // { kind: "button" | "textarea", attrs, start }
  for (const m of html.matchAll(TAG)) {
    const closing = m[1] === "/";
    const tag = m[2].toLowerCase();
    const a = closing ? {} : parseAttrs(m[3]);
    if (tag === "form") {
      if (closing) {
        form = null;
      } else {
        form = { action: a.action ?? "", method: (a.method || "get").toLowerCase(), fields: [], names: new Set(), submits: [] };
        forms.push(form);
      }
      continue;
    }
    if (!form) continue;
    if (closing) {
      if (open && tag === open.kind) {
        const inner = html.slice(open.start, m.index);
        if (tag === "button") {
          if (open.attrs.name) form.names.add(open.attrs.name);
          form.submits.push([open.attrs.name ?? "", open.attrs.value ?? "", visibleText(inner)]);
        } else {
          form.fields.push([open.attrs.name, unescapeHtml(inner)]);
        }
        open = null;
      }
      continue;
    }
    const name = a.name;
    if (tag === "input") {
      const type = (a.type || "text").toLowerCase();
      if (name) form.names.add(name);
      if (type === "submit" || type === "image") form.submits.push([name ?? "", a.value ?? "", a.value ?? ""]);
      else if (NON_TEXT_INPUTS.has(type)) continue;
      else if (type === "checkbox" || type === "radio") {
        if ("checked" in a && name) form.fields.push([name, a.value ?? "on"]);
      } else if (name) form.fields.push([name, a.value ?? ""]);
    } else if (tag === "button") {
      if ((a.type || "submit").toLowerCase() === "submit") open = { kind: "button", attrs: a, start: m.index + m[0].length };
    } else if (tag === "textarea" && name) {
      form.names.add(name);
      open = { kind: "textarea", attrs: a, start: m.index + m[0].length };
    } else if (tag === "select" && name) {
      form.names.add(name); // no page should need one; send nothing rather than guess
    }
  }
  return forms;
}

export function visibleText(markup) {
  const text = markup
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<[^>]+>/g, " ");
  return unescapeHtml(text).replace(/\s+/g, " ").trim();
}

function pickForm(forms) {
  return (
    forms.find((f) => f.names.has("login") || f.names.has("passwd")) ??
    forms.find((f) => f.method === "post") ??
    forms[0]
  );
}

function pickSubmit(form) {
  if (!form.submits.length) return null;
  const text = ([n, v, l]) => `${n} ${v} ${l}`;
  return (
    form.submits.find((s) => POSITIVE.test(text(s)) && !NEGATIVE.test(text(s))) ??
    form.submits.find((s) => !NEGATIVE.test(text(s))) ??
    form.submits[0]
  );
}

// ------------------------------------------------------------------ a browser: fetch + cookies

/** A cookie jar for one server: name → value, honouring Max-Age/Expires deletions. */
export class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ""] = attr.split("=").map((s) => s.trim());
        if (k.toLowerCase() === "max-age" && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === "expires" && Date.parse(v) < Date.now()) expired = true;
      }
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  names() {
    return [...this.#cookies.keys()];
  }
}

/** fetch with manual redirects and a cookie jar; every answer is { status, url, headers, text }. */
export class Browser {
  constructor({ timeoutMs = 30_000 } = {}) {
    this.jar = new CookieJar();
    this.timeoutMs = timeoutMs;
  }

  async request(method, url, form = null) {
    const headers = { accept: "text/html,application/xhtml+xml,*/*" };
    const cookie = this.jar.header();
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: "manual", signal: AbortSignal.timeout(this.timeoutMs) });
    this.jar.store(res);
    return { status: res.status, url, headers: res.headers, text: await res.text() };
  }

  get(url) {
    return this.request("GET", url);
  }

  post(url, form) {
    return this.request("POST", url, form);
  }
}

// ------------------------------------------------------------------ the driver

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Opens authUri in `browser` and goes through the server's pages until the app's redirectUri.
 * Resolves to { location, params, page, trail, describe() }: `location` is the redirect_uri URL
 * reached (with `params` its query as an object), or null with `page` the last response.
 *
 * submitForms=false stops at the first page with a form (prompt=none must show none);
 * onlySignIn=true submits sign-in forms only and stops at any other page (a consent prompt).
 */
export async function signIn(browser, authUri, redirectUri, username, password, { submitForms = true, onlySignIn = false, maxSteps = 15 } = {}) {
  const server = new URL(authUri).host;
  const trail = [];
  const result = (location, page) => ({
    location,
    page,
    trail,
    params: location ? Object.fromEntries(new URL(location).searchParams) : null,
    describe() {
      const lines = ["sign-in trail:", ...trail.map((t) => `  ${t}`)];
      if (page) {
        lines.push(`stopped on HTTP ${page.status} ${page.headers.get("content-type") ?? ""}:`);
        lines.push(visibleText(page.text).slice(0, 1500));
      }
      return lines.join("\n");
    },
  });

  let res = await browser.get(authUri);
  trail.push(`GET ${authUri} -> ${res.status}`);
  for (let step = 0; step < maxSteps; step++) {
    if (REDIRECTS.has(res.status)) {
      const loc = new URL(res.headers.get("location") ?? "", res.url).href;
      if (loc.startsWith(redirectUri)) return result(loc, null);
      if (new URL(loc).host !== server) {
        throw new Error(`redirected off the server to ${loc} (expected ${redirectUri}...)\n${result(null, res).describe()}`);
      }
      res = await browser.get(loc);
      trail.push(`GET ${loc} -> ${res.status}`);
      continue;
    }
    const isHtml = (res.headers.get("content-type") ?? "").includes("html");
    const forms = res.status === 200 && isHtml ? parseForms(res.text) : [];
    if (!forms.length || !submitForms) return result(null, res);
    const form = pickForm(forms);
    const signInForm = form.names.has("login") || form.names.has("passwd");
    if (onlySignIn && !signInForm) return result(null, res);
    let data = [...form.fields];
    if (form.names.has("login")) data = [...data.filter(([k]) => k !== "login"), ["login", username]];
    if (form.names.has("passwd")) data = [...data.filter(([k]) => k !== "passwd"), ["passwd", password]];
    const button = pickSubmit(form);
    if (button && button[0]) data.push([button[0], button[1]]);
    const action = form.action ? new URL(form.action, res.url).href : res.url;
    if (action.startsWith(redirectUri)) {
      // response_mode=form_post: the "browser" would post this to the app.
      const url = new URL(action);
      for (const [k, v] of data) url.searchParams.append(k, v);
      return result(url.href, null);
    }
    if (form.method === "post") {
      res = await browser.post(action, data);
    } else {
      const url = new URL(action);
      for (const [k, v] of data) url.searchParams.append(k, v);
      res = await browser.get(url.href);
    }
    trail.push(`${form.method.toUpperCase()} ${action} [${data.map(([k]) => k).join(", ")}] -> ${res.status}`);
  }
  throw new Error(`no redirect to ${redirectUri} after ${maxSteps} steps\n${result(null, res).describe()}`);
}
