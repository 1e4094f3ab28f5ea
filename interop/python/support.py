"""Shared pieces of the interop tier: the scenario's world, JWT decoding, MSAL factories."""

from __future__ import annotations

import base64
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import msal

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO = REPO_ROOT / "interop" / "scenario.toml"
HTTP_TIMEOUT_S = 30
GRAPH = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

# client-compat P3: MSAL Python drops the port, so ROPC's user-realm look-up would go to
# https://localhost:443/common/userrealm/...; tell it localhost has no user realm.
msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")


@dataclass(frozen=True)
class User:
    upn: str
    password: str
    id: str | None


@dataclass(frozen=True)
class App:
    app_id: str
    display_name: str
    secret: str | None
    redirect_uri: str
    public_client: bool


@dataclass(frozen=True)
class Event:
    owner: str  # UPN
    subject: str
    start: str  # RFC 3339, as written in the scenario
    end: str


@dataclass(frozen=True)
class World:
    """What interop/scenario.toml declares, as the tests need it."""

    tid: str
    domain: str
    users: dict[str, User]
    apps: dict[str, App]  # by display name
    events: tuple[Event, ...] = ()

    def events_of(self, upn: str) -> list[Event]:
        """The user's events in the order Graph lists them by default (by start)."""
        return sorted((e for e in self.events if e.owner == upn), key=lambda e: e.start)

    @property
    def alice(self) -> User:
        return self.users[f"alice@{self.domain}"]

    @property
    def admin(self) -> User:
        return self.users[f"admin@{self.domain}"]

    @property
    def confidential(self) -> App:
        return self.apps["Interop Confidential"]

    @property
    def public(self) -> App:
        return self.apps["Interop Public"]

    @property
    def no_grant(self) -> App:
        return self.apps["Interop No Grant"]

    @property
    def user_consent(self) -> App:
        return self.apps["Interop User Consent"]

    @property
    def assigned(self) -> App:
        return self.apps["Interop Assigned"]

    @property
    def admin_only(self) -> App:
        return self.apps["Interop Admin Only"]

    @property
    def calendar_writer(self) -> App:
        return self.apps["Interop Calendar Writer"]


def load_world(path: Path = SCENARIO) -> World:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    (tenant,) = doc["tenant"]
    users = {
        u["upn"]: User(upn=u["upn"], password=u["password"], id=u.get("id"))
        for u in tenant.get("user", [])
    }
    apps = {
        a["display_name"]: App(
            app_id=a["app_id"],
            display_name=a["display_name"],
            secret=(a.get("secrets") or [None])[0],
            redirect_uri=a["redirect_uris"][0],
            public_client=bool(a.get("public_client", False)),
        )
        for a in tenant.get("app", [])
    }
    events = tuple(
        Event(owner=e["owner"], subject=e["subject"], start=e["start"], end=e["end"])
        for e in tenant.get("event", [])
    )
    return World(tid=tenant["id"], domain=tenant["domains"][0], users=users, apps=apps, events=events)



# --------------------------------------------------------------------------- tokens

def _b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_header(token: str) -> dict:
    """The JOSE header of a compact JWS, unverified."""
    return _b64url_json(token.split(".")[0])


def jwt_payload(token: str) -> dict:
    """The claims of a compact JWS, unverified (signatures are checked by other tiers)."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a compact JWS: {token[:40]}..."
    return _b64url_json(parts[1])


def scopes_of(claims: dict) -> set[str]:
    return set((claims.get("scp") or "").split())


# --------------------------------------------------------------------------- MSAL
# Each test builds its own app objects: MSAL caches discovery, tokens, and even HTTP 400
# answers to identical token POSTs for 60 s (client-compat P2).


def confidential_app(accord, app: App, *, secret: str | None = None, tenant: str | None = None,
                     instance_discovery=False) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        app.app_id,
        client_credential=secret if secret is not None else app.secret,
        authority=accord.authority(tenant),
        instance_discovery=instance_discovery,
        timeout=HTTP_TIMEOUT_S,
    )


def public_app(accord, app: App, *, tenant: str | None = None,
               instance_discovery=False) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        app.app_id,
        authority=accord.authority(tenant),
        instance_discovery=instance_discovery,
        timeout=HTTP_TIMEOUT_S,
    )


# The two ways MSAL learns the authority's endpoints, for tests parametrized over both:
# no instance discovery at all (the tenant's openid-configuration is read directly), or
# Accord's own /common/discovery/instance (MSAL asks it for the tenant_discovery_endpoint).
DISCOVERY_MODES = ("instance_discovery=False", "instance_discovery=accord")


def instance_discovery(accord, mode: str):
    """The value of MSAL's `instance_discovery=` argument for one of DISCOVERY_MODES."""
    if mode == "instance_discovery=False":
        return False
    assert mode == "instance_discovery=accord", mode
    return f"{accord.base}/common/discovery/instance"


def refresh_tokens_in_cache(app: msal.ClientApplication) -> list[str]:
    return [rt["secret"] for rt in app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)]
