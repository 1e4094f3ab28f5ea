"""Authorization code flow (+PKCE) through Accord's real sign-in pages, then refresh."""

import pytest

from signin import sign_in
from support import (
    DISCOVERY_MODES,
    GRAPH,
    GRAPH_APP_ID,
    HTTP_TIMEOUT_S,
    confidential_app,
    instance_discovery,
    jwt_payload,
    refresh_tokens_in_cache,
    scopes_of,
)

pytestmark = pytest.mark.msal

SCOPES = ["User.Read", "Calendars.Read"]


def _signed_in(accord, cca, app, user, scopes=SCOPES):
    """initiate_auth_code_flow -> drive the pages -> acquire_token_by_auth_code_flow."""
    flow = cca.initiate_auth_code_flow(scopes, redirect_uri=app.redirect_uri)
    assert flow["auth_uri"].startswith(f"{accord.authority()}/oauth2/v2.0/authorize?"), flow["auth_uri"]
    browser = accord.session()
    landed = sign_in(browser, flow["auth_uri"], app.redirect_uri, user.upn, user.password)
    assert landed.location, "never redirected back to the app\n" + landed.describe()
    params = landed.params
    assert "code" in params, f"redirect carries no code: {params}"
    assert params.get("state") == flow["state"], params
    result = cca.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in result, f"code redemption failed: {result}"
    return result


@pytest.mark.parametrize("discovery", DISCOVERY_MODES)
def test_auth_code_flow_then_silent_and_refresh(accord, discovery):
    world = accord.world
    app, alice = world.confidential, world.alice
    cca = confidential_app(accord, app, instance_discovery=instance_discovery(accord, discovery))
    # Either way MSAL must end up at this tenant's endpoints (with our instance discovery,
    # through the tenant_discovery_endpoint it answered).
    assert cca.authority.token_endpoint == accord.token_endpoint(), cca.authority.token_endpoint
    result = _signed_in(accord, cca, app, alice)

    idt = result.get("id_token_claims") or {}
    assert idt.get("preferred_username") == alice.upn, idt
    assert idt.get("tid") == accord.tid, idt
    assert idt.get("aud") == app.app_id, idt
    oid = idt.get("oid")
    assert oid, idt
    if alice.id:
        assert oid == alice.id, f"oid {oid} is not the scenario's object id {alice.id}"
    assert result.get("refresh_token"), f"no refresh_token although MSAL asked for offline_access: {result.keys()}"
    assert result.get("token_type", "").lower() == "bearer", result
    assert type(result.get("expires_in")) is int, result.get("expires_in")

    at = jwt_payload(result["access_token"])
    assert at.get("aud") in (GRAPH, GRAPH_APP_ID), at
    assert at.get("tid") == accord.tid and at.get("oid") == oid, at
    assert {"User.Read", "Calendars.Read"} <= scopes_of(at), at

    accounts = cca.get_accounts()
    assert len(accounts) == 1, accounts
    account = accounts[0]
    assert account["home_account_id"] == f"{oid}.{accord.tid}", (
        f"home_account_id {account['home_account_id']!r}: the token response needs "
        "client_info = base64url({uid: oid, utid: tid})"
    )
    assert account["username"] == alice.upn, account

    cached = cca.acquire_token_silent(SCOPES, account=account)
    assert cached and cached.get("token_source") == "cache", (
        f"acquire_token_silent({SCOPES}) was not a cache hit: {cached and cached.get('token_source')!r}; "
        f"MSAL keys the cache by the response `scope`, which was {result.get('scope')!r} "
        "(Graph scopes must come back as 'User.Read', not 'https://graph.microsoft.com/User.Read')"
    )
    assert cached["access_token"] == result["access_token"]

    rt0 = refresh_tokens_in_cache(cca)
    assert rt0 == [result["refresh_token"]], "MSAL did not cache the refresh token"

    refreshed = cca.acquire_token_silent(SCOPES, account=account, force_refresh=True)
    assert refreshed and "access_token" in refreshed, f"refresh_token grant failed: {refreshed}"
    assert refreshed.get("token_source") == "identity_provider", refreshed
    assert refreshed["access_token"] != result["access_token"]
    assert jwt_payload(refreshed["access_token"]).get("oid") == oid
    rt1 = refresh_tokens_in_cache(cca)
    assert len(rt1) == 1 and rt1 != rt0, "the refresh grant should rotate the refresh token and MSAL keep the new one"

    again = cca.acquire_token_silent(SCOPES, account=account, force_refresh=True)
    assert again and "access_token" in again, f"second refresh (with the rotated token) failed: {again}"
    assert again["access_token"] not in (result["access_token"], refreshed["access_token"])
    rt2 = refresh_tokens_in_cache(cca)
    assert len(rt2) == 1 and rt2 not in (rt0, rt1), "the second refresh should rotate again"


def _redeem(accord, app, refresh_token):
    s = accord.session()
    return s.post(
        accord.token_endpoint(),
        data={
            "grant_type": "refresh_token",
            "client_id": app.app_id,
            "client_secret": app.secret,
            "refresh_token": refresh_token,
            "scope": "openid profile offline_access User.Read",
        },
        timeout=HTTP_TIMEOUT_S,
    )


def test_refresh_token_reuse_revokes_the_family(accord):
    world = accord.world
    app = world.confidential
    cca = confidential_app(accord, app)
    rt_old = _signed_in(accord, cca, app, world.alice)["refresh_token"]

    first = _redeem(accord, app, rt_old)
    assert first.status_code == 200, f"{first.status_code} {first.text}"
    body = first.json()
    rt_new = body.get("refresh_token")
    assert body.get("access_token") and rt_new and rt_new != rt_old, body

    replay = _redeem(accord, app, rt_old)
    assert replay.status_code == 400, f"replaying a redeemed refresh token: {replay.status_code} {replay.text}"
    assert replay.json().get("error") == "invalid_grant", replay.text

    after = _redeem(accord, app, rt_new)
    assert after.status_code == 400, (
        f"after a replay the whole token family must be revoked; the new one still works: {after.status_code} {after.text}"
    )
    assert after.json().get("error") == "invalid_grant", after.text
