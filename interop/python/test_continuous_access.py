"""Continuous access evaluation (issue 14, part 5) with unmodified clients: MSAL Python with
client_capabilities=["CP1"] gets a long-lived token; once an administrator ends the user's
sign-ins, Graph answers it with a claims challenge, and MSAL's claims_challenge handling (cache
bypassed, a new sign-in carrying the challenge) gets a token Graph accepts. msgraph-sdk (kiota,
CAE on by default) over azure-identity declares cp1 the same way.

The test starts its own server: interop/scenario.toml with the confidential app also holding
User.ReadWrite.All (to end Alice's sign-ins through Graph, as an administrator's tool would)."""

import asyncio
import base64
import json
import os
import re
import time

import msal
import requests
from azure.identity import ClientSecretCredential, UsernamePasswordCredential
from msgraph import GraphServiceClient

import pytest

from conftest import launch
from support import GRAPH, HTTP_TIMEOUT_S, SCENARIO, jwt_payload, load_world

APP_PERMISSIONS = '["Calendars.Read", "User.Read.All", "Application.Read.All", "DelegatedPermissionGrant.ReadWrite.All"]'


@pytest.fixture(scope="module")
def cae_world(tmp_path_factory):
    text = SCENARIO.read_text()
    assert text.count(APP_PERMISSIONS) == 2, "the confidential app's required list and grant"
    scenario = tmp_path_factory.mktemp("cae-world") / "scenario.toml"
    scenario.write_text(text.replace(APP_PERMISSIONS, APP_PERMISSIONS[:-1] + ', "User.ReadWrite.All"]'))
    launched = launch(scenario, tmp_path_factory.mktemp("accord-cae-data"), "accord-interop-cae")
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    for k in saved:
        os.environ[k] = str(launched.ca)
    try:
        yield {"base": launched.base, "ca": str(launched.ca), "world": load_world()}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        launched.stop()


def _next_second():
    time.sleep(1.01 - (time.time() % 1))


def _end_alice_sign_ins(w, world):
    """What an administrator's tool does: POST /users/{id}/revokeSignInSessions, app-only."""
    admin = ClientSecretCredential(
        world.tid, world.confidential.app_id, world.confidential.secret,
        authority=w["base"], disable_instance_discovery=True,
    )
    token = admin.get_token(f"{GRAPH}/.default").token
    admin.close()
    r = requests.post(
        f"{w['base']}/v1.0/users/{world.alice.id}/revokeSignInSessions",
        headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT_S, verify=w["ca"],
    )
    assert r.status_code == 200, r.text


def _me(w, token):
    return requests.get(f"{w['base']}/v1.0/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=HTTP_TIMEOUT_S, verify=w["ca"])


def test_msal_python_answers_a_claims_challenge(cae_world):
    w, world = cae_world, cae_world["world"]
    alice = world.alice
    msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")
    pca = msal.PublicClientApplication(
        world.public.app_id, authority=f"{w['base']}/{world.tid}", instance_discovery=False,
        timeout=HTTP_TIMEOUT_S, client_capabilities=["CP1"],
    )
    first = pca.acquire_token_by_username_password(alice.upn, alice.password, scopes=["User.Read"])
    assert "access_token" in first, first
    claims = jwt_payload(first["access_token"])
    assert claims.get("xms_cc") == ["cp1"], claims
    assert first["expires_in"] > 3600, "a capable client's token is long-lived"
    assert _me(w, first["access_token"]).status_code == 200

    _next_second()
    _end_alice_sign_ins(w, world)
    answer = _me(w, first["access_token"])
    assert answer.status_code == 401, answer.text
    header = answer.headers["WWW-Authenticate"]
    assert 'error="insufficient_claims"' in header, header
    challenge = base64.b64decode(re.search(r'claims="([^"]+)"', header).group(1)).decode()
    assert json.loads(challenge)["access_token"]["nbf"]["essential"] is True, challenge

    # MSAL with the challenge: the cache is bypassed; the refresh token went with the sign-ins,
    # so silent fails and the app signs in again, with the challenge.
    account = pca.get_accounts(username=alice.upn)[0]
    silent = pca.acquire_token_silent_with_error(["User.Read"], account=account, claims_challenge=challenge)
    assert silent and "access_token" not in silent, silent
    _next_second()
    again = pca.acquire_token_by_username_password(
        alice.upn, alice.password, scopes=["User.Read"], claims_challenge=challenge
    )
    assert "access_token" in again, again
    assert _me(w, again["access_token"]).status_code == 200


def test_graph_sdk_declares_cp1(cae_world):
    """msgraph-sdk (kiota) enables CAE by default: its credential asks for cp1 tokens."""
    w, world = cae_world, cae_world["world"]
    cred = UsernamePasswordCredential(
        world.public.app_id, world.alice.upn, world.alice.password, tenant_id=world.tid,
        authority=w["base"], disable_instance_discovery=True,
    )
    seen = []
    real_token, real_info = cred.get_token, cred.get_token_info

    def observed_token(*scopes, **kwargs):
        token = real_token(*scopes, **kwargs)
        seen.append(jwt_payload(token.token))
        return token

    def observed_info(*scopes, options=None):
        info = real_info(*scopes, options=options)
        seen.append(jwt_payload(info.token))
        return info

    cred.get_token, cred.get_token_info = observed_token, observed_info
    client = GraphServiceClient(credentials=cred, scopes=[f"{GRAPH}/User.Read"])
    client.request_adapter.base_url = f"{w['base']}/v1.0"

    async def main():
        try:
            return await client.me.get()
        finally:
            http = client.request_adapter._http_client
            await http.aclose()
            inner = getattr(http._transport, "transport", None)
            if inner is not None:
                await inner.aclose()

    try:
        me = asyncio.run(main())
    finally:
        cred.close()
    assert me.user_principal_name == world.alice.upn
    assert seen and seen[0].get("xms_cc") == ["cp1"], seen
