"""On-behalf-of (issue 14, part 2) with unmodified clients: an API (a confidential client)
receives its user's token and calls Microsoft Graph as that user through MSAL Python's
`acquire_token_on_behalf_of` and azure-identity's `OnBehalfOfCredential`; where the API holds no
consent, or the token was not issued for it, the errors are Entra's.

interop/scenario.toml registers the API (`api://interop-api`, scope Notes.Read), its consent for
Graph (sign-in and User.Read, not Calendars.Read) and the public client's consent for the API."""

import msal
import pytest
from azure.identity import OnBehalfOfCredential

from support import GRAPH, HTTP_TIMEOUT_S, jwt_payload

API_ID = "c0c0c0c0-1111-4111-8111-0000000000a1"
API_SECRET = "interop-api-secret-1"
API_SCOPE = "api://interop-api/Notes.Read"
PUBLIC_ID = "c0c0c0c0-1111-4111-8111-000000000002"  # Interop Public


@pytest.fixture()
def obo_world(accord):
    return {"base": accord.base, "ca": accord.ca, "tid": accord.tid, "alice": accord.world.alice}


def _user_token(w, scope: str) -> str:
    """Alice's token from the public client (ROPC keeps the test short; any flow would do)."""
    pca = msal.PublicClientApplication(
        PUBLIC_ID, authority=f"{w['base']}/{w['tid']}", instance_discovery=False, timeout=HTTP_TIMEOUT_S
    )
    result = pca.acquire_token_by_username_password(w["alice"].upn, w["alice"].password, scopes=[scope])
    assert "access_token" in result, result
    return result["access_token"]


def _api(w) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        API_ID,
        client_credential=API_SECRET,
        authority=f"{w['base']}/{w['tid']}",
        instance_discovery=False,
        timeout=HTTP_TIMEOUT_S,
    )


@pytest.fixture(autouse=True)
def _no_user_realm_lookup():
    msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")


def test_msal_python_acquire_token_on_behalf_of(obo_world):
    w = obo_world
    assertion = _user_token(w, API_SCOPE)
    assert jwt_payload(assertion)["aud"] == API_ID
    result = _api(w).acquire_token_on_behalf_of(assertion, scopes=["User.Read"])
    assert "access_token" in result, result
    claims = jwt_payload(result["access_token"])
    assert claims["preferred_username"] == w["alice"].upn, claims
    assert claims["azp"] == API_ID, claims
    assert claims["aud"] in (GRAPH, "00000003-0000-0000-c000-000000000000"), claims
    assert result.get("refresh_token"), "MSAL asks for offline_access, which the API holds"


def test_azure_identity_on_behalf_of_credential(obo_world):
    w = obo_world
    cred = OnBehalfOfCredential(
        w["tid"], API_ID, client_secret=API_SECRET, user_assertion=_user_token(w, API_SCOPE), authority=w["base"],
        disable_instance_discovery=True,
    )
    token = cred.get_token(f"{GRAPH}/User.Read")
    assert jwt_payload(token.token)["preferred_username"] == w["alice"].upn


def test_on_behalf_of_without_downstream_consent_is_consent_required(obo_world):
    w = obo_world
    result = _api(w).acquire_token_on_behalf_of(_user_token(w, API_SCOPE), scopes=["Calendars.Read"])
    assert result.get("error") == "invalid_grant", result
    assert 65001 in result.get("error_codes", []), result
    assert result.get("suberror") == "consent_required", result


def test_on_behalf_of_with_a_token_for_another_audience(obo_world):
    w = obo_world
    graph_token = _user_token(w, "User.Read")
    result = _api(w).acquire_token_on_behalf_of(graph_token, scopes=["User.Read"])
    assert 500131 in result.get("error_codes", []), result
