"""Drive Accord's sign-in (and consent) pages over plain HTTP, like a browser without JS.

The pages are server-rendered HTML forms (design.md: "drivable by a plain HTTP client").
The driver knows no page by name. On every 200 HTML page that has a form it fills
`login` and `passwd` when the form has those inputs, keeps every other input's value
(hidden CSRF tokens, flow ids), presses the "accept"-like submit button if there are
several, and posts. It follows redirects that stay on the server and stops at the first
redirect to the app's redirect_uri, or at a page it cannot go on from (an error page).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import requests

# Buttons we press when a form offers several (consent: Accept / Cancel).
_POSITIVE = re.compile(r"accept|allow|yes|continue|consent|approve|sign.?in|next|submit|ok\b", re.I)
_NEGATIVE = re.compile(r"cancel|deny|decline|reject|\bno\b|back", re.I)
_NON_TEXT_INPUTS = {"submit", "button", "image", "reset", "file"}


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # (name, value) to send
    names: set[str] = field(default_factory=set)  # every named control
    submits: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, label) of buttons


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._button: dict | None = None
        self._textarea: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
            return
        f = self._form
        if f is None:
            return
        name = a.get("name")
        if tag == "input":
            typ = a.get("type", "text").lower()
            if name:
                f.names.add(name)
            if typ in ("submit", "image"):
                f.submits.append((name or "", a.get("value", ""), a.get("value", "")))
            elif typ in _NON_TEXT_INPUTS:
                pass
            elif typ in ("checkbox", "radio"):
                if "checked" in a and name:
                    f.fields.append((name, a.get("value", "on")))
            elif name:
                f.fields.append((name, a.get("value", "")))
        elif tag == "button":
            typ = a.get("type", "submit").lower()
            if typ == "submit":
                self._button = {"name": name or "", "value": a.get("value", ""), "text": ""}
        elif tag == "textarea" and name:
            f.names.add(name)
            self._textarea = {"name": name, "text": ""}
        elif tag == "select" and name:
            # No page should need one; send nothing rather than guess.
            f.names.add(name)

    def handle_data(self, data):
        if self._button is not None:
            self._button["text"] += data
        if self._textarea is not None:
            self._textarea["text"] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "button" and self._button is not None:
            b = self._button
            self._button = None
            if self._form is not None:
                if b["name"]:
                    self._form.names.add(b["name"])
                # the visible text helps choose the button; only name=value is sent
                self._form.submits.append((b["name"], b["value"], b["text"].strip()))
        elif tag == "textarea" and self._textarea is not None:
            t = self._textarea
            self._textarea = None
            if self._form is not None:
                self._form.fields.append((t["name"], t["text"]))


def parse_forms(markup: str) -> list[Form]:
    p = _FormParser()
    p.feed(markup)
    p.close()
    return p.forms


def _pick_form(forms: list[Form]) -> Form:
    for f in forms:
        if "login" in f.names or "passwd" in f.names:
            return f
    for f in forms:
        if f.method == "post":
            return f
    return forms[0]


def _pick_submit(form: Form) -> tuple[str, str] | None:
    if not form.submits:
        return None
    for name, value, label in form.submits:
        text = f"{name} {value} {label}"
        if _POSITIVE.search(text) and not _NEGATIVE.search(text):
            return name, value
    for name, value, label in form.submits:
        if not _NEGATIVE.search(f"{name} {value} {label}"):
            return name, value
    return form.submits[0][:2]


@dataclass
class SignInResult:
    """Where the browser ended: a redirect to the app, or a page it stopped on."""

    location: str | None  # the redirect_uri URL (with its query), if reached
    page: requests.Response | None  # the last response otherwise
    trail: list[str]  # "METHOD URL -> status" for each hop, for assertion messages

    @property
    def params(self) -> dict[str, str]:
        assert self.location is not None, self.describe()
        return dict(parse_qsl(urlsplit(self.location).query))

    def describe(self) -> str:
        lines = ["sign-in trail:"] + ["  " + t for t in self.trail]
        if self.page is not None:
            body = self.page.text
            lines.append(f"stopped on HTTP {self.page.status_code} {self.page.headers.get('content-type', '')}:")
            lines.append(_visible_text(body)[:1500])
        return "\n".join(lines)


def _visible_text(markup: str) -> str:
    text = re.sub(r"(?is)<(script|style)[^>]*>.*?</\1>", " ", markup)
    text = re.sub(r"(?s)<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def page_text(resp: requests.Response) -> str:
    return _visible_text(resp.text)


def sign_in(
    session: requests.Session,
    auth_uri: str,
    redirect_uri: str,
    username: str,
    password: str,
    *,
    submit_forms: bool = True,
    only_sign_in: bool = False,
    max_steps: int = 15,
    timeout: float = 30,
) -> SignInResult:
    """Open auth_uri and go through the server's pages until the app's redirect_uri.

    With submit_forms=False the driver stops at the first page with a form (for
    prompt=none, where the server must not show any UI). With only_sign_in=True it
    submits sign-in forms (those with `login` or `passwd`) and stops at any other
    page, such as a consent prompt.
    """
    server = urlsplit(auth_uri).netloc
    trail: list[str] = []
    resp = session.get(auth_uri, allow_redirects=False, timeout=timeout)
    trail.append(f"GET {auth_uri} -> {resp.status_code}")
    for _ in range(max_steps):
        if resp.is_redirect or resp.status_code in (301, 302, 303, 307, 308):
            loc = urljoin(resp.url, resp.headers.get("Location", ""))
            if loc.startswith(redirect_uri):
                return SignInResult(location=loc, page=None, trail=trail)
            if urlsplit(loc).netloc != server:
                raise AssertionError(
                    f"redirected off the server to {loc} (expected {redirect_uri}...)\n"
                    + SignInResult(None, resp, trail).describe()
                )
            resp = session.get(loc, allow_redirects=False, timeout=timeout)
            trail.append(f"GET {loc} -> {resp.status_code}")
            continue
        ctype = resp.headers.get("content-type", "")
        forms = parse_forms(resp.text) if resp.status_code == 200 and "html" in ctype else []
        if not forms or not submit_forms:
            return SignInResult(location=None, page=resp, trail=trail)
        form = _pick_form(forms)
        if only_sign_in and not ({"login", "passwd"} & form.names):
            return SignInResult(location=None, page=resp, trail=trail)
        data = list(form.fields)
        if "login" in form.names:
            data = [(k, v) for k, v in data if k != "login"] + [("login", username)]
        if "passwd" in form.names:
            data = [(k, v) for k, v in data if k != "passwd"] + [("passwd", password)]
        button = _pick_submit(form)
        if button and button[0]:
            data.append(button)
        action = urljoin(resp.url, form.action) if form.action else resp.url
        if action.startswith(redirect_uri):
            # response_mode=form_post: the "browser" would post this to the app.
            return SignInResult(location=action + ("&" if "?" in action else "?") + urlencode(data), page=None, trail=trail)
        if form.method == "post":
            resp = session.post(action, data=data, allow_redirects=False, timeout=timeout)
        else:
            sep = "&" if urlsplit(action).query else "?"
            resp = session.get(action + sep + urlencode(data), allow_redirects=False, timeout=timeout)
        trail.append(f"{form.method.upper()} {action} [{', '.join(k for k, _ in data)}] -> {resp.status_code}")
    raise AssertionError(f"no redirect to {redirect_uri} after {max_steps} steps\n" + SignInResult(None, resp, trail).describe())


def press(
    session: requests.Session,
    at: SignInResult,
    button: str,
    redirect_uri: str,
    *,
    fields: dict[str, str] | None = None,
    timeout: float = 30,
) -> SignInResult:
    """On the page `at` stopped on, submit its form with the button whose name, value or
    label matches `button` (a regex, case-insensitive), after setting `fields`; then follow
    redirects on the server until the app's redirect_uri or the next page. For the paths
    the accept-everything driver above never takes: Cancel on a consent prompt, a
    justification on "Approval required"."""
    assert at.page is not None, "nothing to press: " + at.describe()
    resp = at.page
    trail = list(at.trail)
    forms = [f for f in parse_forms(resp.text) if any(re.search(button, " ".join(s), re.I) for s in f.submits)]
    assert forms, f"no form with a {button!r} button\n" + at.describe()
    form = forms[0]
    name, value = next((n, v) for n, v, label in form.submits if re.search(button, f"{n} {v} {label}", re.I))
    data = [(k, v) for k, v in form.fields if k not in (fields or {})] + list((fields or {}).items())
    if name:
        data.append((name, value))
    action = urljoin(resp.url, form.action) if form.action else resp.url
    resp = session.post(action, data=data, allow_redirects=False, timeout=timeout)
    trail.append(f"POST {action} [{', '.join(k for k, _ in data)}] -> {resp.status_code}")
    server = urlsplit(action).netloc
    while resp.status_code in (301, 302, 303, 307, 308):
        loc = urljoin(resp.url, resp.headers.get("Location", ""))
        if loc.startswith(redirect_uri):
            return SignInResult(location=loc, page=None, trail=trail)
        assert urlsplit(loc).netloc == server, f"redirected off the server to {loc}"
        resp = session.get(loc, allow_redirects=False, timeout=timeout)
        trail.append(f"GET {loc} -> {resp.status_code}")
    return SignInResult(location=None, page=resp, trail=trail)
