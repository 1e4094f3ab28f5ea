"""Certificate credentials (issue 13, part 1) with unmodified clients: MSAL Python's
ConfidentialClientApplication (RS256 with a SHA-1 thumbprint, and with the certificate sent as
x5c) and azure-identity's CertificateCredential, sync (through MSAL) and async (its own PS256
assertion with every segment padded), against an app whose certificate the scenario registers.

The certificate is made here, so nothing secret lives in the repository; the test starts its
own server with a copy of interop/scenario.toml that registers it."""

import asyncio
import datetime
import hashlib
import os

import msal
import pytest
from azure.identity import CertificateCredential
from azure.identity.aio import CertificateCredential as AsyncCertificateCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import launch
from support import GRAPH, HTTP_TIMEOUT_S, SCENARIO, jwt_payload

GRAPH_DEFAULT = f"{GRAPH}/.default"
APP_ID = "c0c0c0c0-1111-4111-8111-000000000001"  # Interop Confidential


def _certificate(name: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    thumbprint = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return key_pem, cert_pem, thumbprint


@pytest.fixture(scope="module")
def cert_world(tmp_path_factory):
    key_pem, cert_pem, thumbprint = _certificate("interop-certificate")
    text = SCENARIO.read_text()
    anchor = f'app_id = "{APP_ID}"'
    assert anchor in text
    scenario = tmp_path_factory.mktemp("cert-world") / "scenario.toml"
    scenario.write_text(text.replace(anchor, f"{anchor}\ncertificates = ['''\n{cert_pem.strip()}''']", 1))
    launched = launch(scenario, tmp_path_factory.mktemp("accord-cert-data"), "accord-interop-certificates")
    pem_file = scenario.parent / "client.pem"
    pem_file.write_text(key_pem + cert_pem)
    # This server has its own development CA: the clients' HTTP stacks read these variables.
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    for k in saved:
        os.environ[k] = str(launched.ca)
    try:
        yield {
            "base": launched.base,
            "ca": str(launched.ca),
            "tid": _tenant_id(text),
            "key_pem": key_pem,
            "cert_pem": cert_pem,
            "thumbprint": thumbprint,
            "pem_file": str(pem_file),
        }
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        launched.stop()


def _tenant_id(scenario_text: str) -> str:
    for line in scenario_text.splitlines():
        if line.startswith("id = "):
            return line.split('"')[1]
    raise AssertionError("no tenant id in the scenario")


def _msal_app(w, credential):
    return msal.ConfidentialClientApplication(
        APP_ID,
        client_credential=credential,
        authority=f"{w['base']}/{w['tid']}",
        instance_discovery=False,
        timeout=HTTP_TIMEOUT_S,
        verify=w["ca"],
    )


def _assert_certificate_token(token: str):
    claims = jwt_payload(token)
    assert claims.get("azp") == APP_ID, claims
    assert claims.get("azpacr") == "2", claims


def test_msal_python_with_private_key_and_thumbprint(cert_world):
    w = cert_world
    app = _msal_app(w, {"private_key": w["key_pem"], "thumbprint": w["thumbprint"]})
    result = app.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    _assert_certificate_token(result["access_token"])


def test_msal_python_sending_the_certificate_as_x5c(cert_world):
    w = cert_world
    credential = {"private_key": w["key_pem"], "thumbprint": w["thumbprint"], "public_certificate": w["cert_pem"]}
    result = _msal_app(w, credential).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    _assert_certificate_token(result["access_token"])


def test_msal_python_with_a_certificate_the_app_does_not_have(cert_world):
    w = cert_world
    key_pem, _, thumbprint = _certificate("stranger")
    result = _msal_app(w, {"private_key": key_pem, "thumbprint": thumbprint}).acquire_token_for_client(
        scopes=[GRAPH_DEFAULT]
    )
    assert result.get("error") == "invalid_client", result
    assert 700027 in result.get("error_codes", []), result


def test_azure_identity_certificate_credential(cert_world):
    w = cert_world
    cred = CertificateCredential(
        w["tid"], APP_ID, certificate_path=w["pem_file"], authority=w["base"], disable_instance_discovery=True
    )
    with cred:
        token = cred.get_token(GRAPH_DEFAULT)
    _assert_certificate_token(token.token)


def test_azure_identity_async_certificate_credential(cert_world):
    w = cert_world

    async def get():
        cred = AsyncCertificateCredential(
            w["tid"], APP_ID, certificate_path=w["pem_file"], authority=w["base"], disable_instance_discovery=True
        )
        async with cred:
            return await cred.get_token(GRAPH_DEFAULT)

    token = asyncio.run(get())
    _assert_certificate_token(token.token)
