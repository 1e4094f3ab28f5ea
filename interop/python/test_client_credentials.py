"""client_credentials with MSAL's ConfidentialClientApplication (client-compat 3.1)."""

import pytest

from support import GRAPH, GRAPH_APP_ID, confidential_app, jwt_header, jwt_payload

pytestmark = pytest.mark.msal

GRAPH_DEFAULT = [f"{GRAPH}/.default"]


def _assert_app_only_graph_token(result: dict, accord, client_id: str) -> dict:
    assert "access_token" in result, f"no access token: {result}"
    assert result.get("token_type", "").lower() == "bearer", result
    assert type(result.get("expires_in")) is int and result["expires_in"] > 0, (
        f"expires_in must be a positive integer, got {result.get('expires_in')!r}"
    )
    header = jwt_header(result["access_token"])
    assert header.get("alg") == "RS256" and header.get("kid"), header
    claims = jwt_payload(result["access_token"])
    assert claims.get("aud") in (GRAPH, GRAPH_APP_ID), claims
    assert claims.get("tid") == accord.tid, claims
    roles = claims.get("roles") or []
    assert "Calendars.Read" in roles and "User.Read.All" in roles, claims
    assert claims.get("ver") in ("2.0", "1.0"), claims
    assert client_id in (claims.get("azp"), claims.get("appid")), claims
    assert "scp" not in claims, f"an app-only token carries no delegated scopes: {claims}"
    return claims


def test_client_credentials_graph_default(accord):
    app = accord.world.confidential
    cca = confidential_app(accord, app)
    first = cca.acquire_token_for_client(GRAPH_DEFAULT)
    _assert_app_only_graph_token(first, accord, app.app_id)
    assert first.get("token_source") == "identity_provider", first

    second = cca.acquire_token_for_client(GRAPH_DEFAULT)
    assert second.get("token_source") == "cache", (
        "second acquire_token_for_client() should be served from MSAL's cache; "
        f"got {second.get('token_source')!r}. The cache key is the response's `scope` "
        f"(first response scope: {first.get('scope')!r}); omit it or echo the requested "
        f"'{GRAPH}/.default' for client_credentials."
    )
    assert second["access_token"] == first["access_token"]


def test_client_credentials_with_our_instance_discovery(accord):
    """instance_discovery=<our URL> makes MSAL read our /common/discovery/instance answer."""
    app = accord.world.confidential
    cca = confidential_app(
        accord, app, instance_discovery=f"{accord.base}/common/discovery/instance"
    )
    # The authority object was built from the tenant_discovery_endpoint we returned.
    assert cca.authority.token_endpoint == accord.token_endpoint(), cca.authority.token_endpoint
    first = cca.acquire_token_for_client(GRAPH_DEFAULT)
    _assert_app_only_graph_token(first, accord, app.app_id)
    second = cca.acquire_token_for_client(GRAPH_DEFAULT)
    assert second.get("token_source") == "cache", second
    assert second["access_token"] == first["access_token"]
