"""Resource owner password credentials (ROPC) with MSAL's PublicClientApplication."""

import msal
import pytest

from support import DISCOVERY_MODES, GRAPH, GRAPH_APP_ID, instance_discovery, jwt_payload, public_app, scopes_of

pytestmark = [
    pytest.mark.msal,
    # client-compat P9: ROPC is deprecated for public clients; the warning is harmless here.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(autouse=True)
def _no_user_realm_lookup():
    # client-compat P3: MSAL drops the port, so its user-realm GET would go to localhost:443.
    msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")


@pytest.mark.parametrize("discovery", DISCOVERY_MODES)
def test_ropc_public_client(accord, discovery):
    world = accord.world
    app, alice = world.public, world.alice
    pca = public_app(accord, app, instance_discovery=instance_discovery(accord, discovery))
    assert pca.authority.token_endpoint == accord.token_endpoint(), pca.authority.token_endpoint
    result = pca.acquire_token_by_username_password(alice.upn, alice.password, scopes=["User.Read"])
    assert "access_token" in result, f"ROPC failed: {result}"
    at = jwt_payload(result["access_token"])
    assert at.get("aud") in (GRAPH, GRAPH_APP_ID), at
    assert at.get("tid") == accord.tid, at
    assert "User.Read" in scopes_of(at), at
    assert app.app_id in (at.get("azp"), at.get("appid")), at
    idt = result.get("id_token_claims") or {}
    assert idt.get("preferred_username") == alice.upn, idt
    assert result.get("refresh_token"), "MSAL asks for offline_access, so a refresh token is due"
    accounts = pca.get_accounts(username=alice.upn)
    assert len(accounts) == 1, accounts
    assert accounts[0]["home_account_id"] == f"{idt.get('oid')}.{accord.tid}", (
        f"home_account_id {accounts[0]['home_account_id']!r}: the token response needs "
        "client_info = base64url({uid: oid, utid: tid})"
    )


def test_ropc_wrong_password(accord):
    world = accord.world
    pca = public_app(accord, world.public)
    result = pca.acquire_token_by_username_password(
        world.alice.upn, world.alice.password + "-wrong", scopes=["User.Read"]
    )
    assert "access_token" not in result, result
    assert result.get("error") == "invalid_grant", result
    assert 50126 in (result.get("error_codes") or []), result
    assert result.get("error_description", "").startswith("AADSTS50126"), result
