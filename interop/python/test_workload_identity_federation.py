"""Workload identity federation (issue 13, part 2) with unmodified clients: an OpenID issuer runs
in this test (its discovery document and JWKS over HTTP on loopback) and signs GitHub-Actions-
shaped tokens; azure-identity's ClientAssertionCredential and WorkloadIdentityCredential (the
Kubernetes token-file path) and MSAL Python's `client_assertion` callback exchange them for
Graph tokens of an app that trusts the issuer, with no secret anywhere.

The test starts its own server with a copy of interop/scenario.toml whose confidential app has a
federated identity credential for this issuer."""

import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import msal
import pytest
from azure.identity import ClientAssertionCredential, WorkloadIdentityCredential
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.utils import to_base64url_uint

from conftest import launch
from support import GRAPH, HTTP_TIMEOUT_S, SCENARIO, jwt_payload

GRAPH_DEFAULT = f"{GRAPH}/.default"
APP_ID = "c0c0c0c0-1111-4111-8111-000000000001"  # Interop Confidential
SUBJECT = "repo:contoso/interop:ref:refs/heads/main"
AUDIENCE = "api://AzureADTokenExchange"


class Issuer:
    """A minimal OpenID issuer: discovery, JWKS, and a signing key."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "interop-issuer-1"
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/keys"}
                elif self.path == "/keys":
                    issuer.fetches += 1
                    numbers = issuer.key.public_key().public_numbers()
                    body = {
                        "keys": [
                            {
                                "kty": "RSA",
                                "use": "sig",
                                "alg": "RS256",
                                "kid": issuer.kid,
                                "n": to_base64url_uint(numbers.n).decode(),
                                "e": to_base64url_uint(numbers.e).decode(),
                            }
                        ]
                    }
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, subject=SUBJECT, audience=AUDIENCE, lifetime=300):
        """A token shaped like GitHub Actions' OIDC token."""
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "jti": str(uuid.uuid4()),
            "repository": "contoso/interop",
            "ref": "refs/heads/main",
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def federated_world(tmp_path_factory):
    issuer = Issuer()
    text = SCENARIO.read_text()
    start = text.index(f'app_id = "{APP_ID}"')
    end = text.index("\n[[tenant.app]]", start)
    credential = (
        "\n  [[tenant.app.federated_credential]]\n"
        '  name = "interop-ci"\n'
        f'  issuer = "{issuer.url}"\n'
        f'  subject = "{SUBJECT}"\n'
    )
    scenario = tmp_path_factory.mktemp("wif-world") / "scenario.toml"
    scenario.write_text(text[:end] + credential + text[end:])
    launched = launch(scenario, tmp_path_factory.mktemp("accord-wif-data"), "accord-interop-federation")
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    for k in saved:
        os.environ[k] = str(launched.ca)
    try:
        yield {"base": launched.base, "ca": str(launched.ca), "tid": _tenant_id(text), "issuer": issuer}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        launched.stop()
        issuer.stop()


def _tenant_id(scenario_text: str) -> str:
    for line in scenario_text.splitlines():
        if line.startswith("id = "):
            return line.split('"')[1]
    raise AssertionError("no tenant id in the scenario")


def _assert_federated_token(token: str):
    claims = jwt_payload(token)
    assert claims.get("azp") == APP_ID, claims
    assert claims.get("azpacr") == "2", claims
    assert "Calendars.Read" in claims.get("roles", []), claims


def test_azure_identity_client_assertion_credential(federated_world):
    w = federated_world
    calls = []

    def assertion():
        calls.append(1)
        return w["issuer"].token()

    cred = ClientAssertionCredential(w["tid"], APP_ID, assertion, authority=w["base"])
    with cred:
        token = cred.get_token(GRAPH_DEFAULT)
    _assert_federated_token(token.token)
    assert calls, "the credential asked for the external token"


def test_azure_identity_workload_identity_credential_reads_the_token_file(federated_world, tmp_path):
    w = federated_world
    token_file = tmp_path / "token"
    token_file.write_text(w["issuer"].token())
    cred = WorkloadIdentityCredential(
        tenant_id=w["tid"], client_id=APP_ID, token_file_path=str(token_file), authority=w["base"]
    )
    with cred:
        token = cred.get_token(GRAPH_DEFAULT)
    _assert_federated_token(token.token)


def _msal_app(w, assertion):
    return msal.ConfidentialClientApplication(
        APP_ID,
        client_credential={"client_assertion": assertion},
        authority=f"{w['base']}/{w['tid']}",
        instance_discovery=False,
        timeout=HTTP_TIMEOUT_S,
        verify=w["ca"],
    )


def test_msal_python_client_assertion_callback(federated_world):
    w = federated_world
    result = _msal_app(w, lambda: w["issuer"].token()).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    _assert_federated_token(result["access_token"])


@pytest.mark.parametrize(
    "subject, code",
    [
        ("repo:contoso/interop:ref:refs/heads/dev", 700213),
        ("repo:Contoso/interop:ref:refs/heads/main", 7002138),
    ],
)
def test_a_token_for_another_subject_is_refused(federated_world, subject, code):
    w = federated_world
    result = _msal_app(w, w["issuer"].token(subject=subject)).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert result.get("error") == "invalid_client", result
    assert code in result.get("error_codes", []), result
    assert subject in result.get("error_description", ""), result


def test_a_token_for_another_audience_is_refused(federated_world):
    w = federated_world
    token = w["issuer"].token(audience="api://somewhere-else")
    result = _msal_app(w, token).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert 700212 in result.get("error_codes", []), result
