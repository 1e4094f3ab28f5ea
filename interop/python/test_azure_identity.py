"""azure-identity credentials against Accord (client-compat 3.3): the full-URL authority
with instance discovery off, as a Graph SDK user would configure them."""

import time

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from support import GRAPH, GRAPH_APP_ID, jwt_header, jwt_payload

GRAPH_DEFAULT = f"{GRAPH}/.default"


def client_secret_credential(accord, app, secret=None) -> ClientSecretCredential:
    return ClientSecretCredential(
        accord.tid,
        app.app_id,
        secret if secret is not None else app.secret,
        authority=accord.base,  # full URL, port included
        disable_instance_discovery=True,
    )


def test_client_secret_credential_gets_app_only_graph_token(accord):
    app = accord.world.confidential
    with client_secret_credential(accord, app) as cred:
        _check_token(accord, app, cred)


def _check_token(accord, app, cred):
    before = time.time()
    token = cred.get_token(GRAPH_DEFAULT)
    assert token.token and token.token.count(".") == 2, token
    assert token.expires_on > before + 60, f"expires_on {token.expires_on} is not in the future"

    assert jwt_header(token.token).get("alg") == "RS256"
    claims = jwt_payload(token.token)
    assert claims.get("aud") in (GRAPH, GRAPH_APP_ID), claims
    assert claims.get("tid") == accord.tid, claims
    assert app.app_id in (claims.get("azp"), claims.get("appid")), claims
    assert {"Calendars.Read", "User.Read.All"} <= set(claims.get("roles") or []), claims
    assert "scp" not in claims, claims

    # azure-identity keeps the token in its MSAL cache: the second call is served from it.
    again = cred.get_token(GRAPH_DEFAULT)
    assert again.token == token.token


def test_client_secret_credential_wrong_secret(accord):
    with client_secret_credential(accord, accord.world.confidential, secret="not-the-secret") as cred:
        with pytest.raises(ClientAuthenticationError) as e:
            cred.get_token(GRAPH_DEFAULT)
    assert "AADSTS7000215" in str(e.value), str(e.value)
