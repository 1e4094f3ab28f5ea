"""OIDC discovery, instance discovery and JWKS as MSAL and strict clients read them."""

import pytest

from support import GRAPH, HTTP_TIMEOUT_S, confidential_app, jwt_header

pytestmark = pytest.mark.msal


def test_discovery_document_for_tenant_guid(accord):
    tid, base = accord.tid, accord.base
    r = accord.session().get(accord.openid_configuration_url(), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    doc = r.json()
    assert doc.get("issuer") == f"{base}/{tid}/v2.0", doc.get("issuer")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert str(doc.get(key, "")).startswith(f"{base}/{tid}/"), f"{key}: {doc.get(key)!r}"
    # MSAL takes the cache realm from the token endpoint's first path segment.
    assert doc["token_endpoint"] == f"{base}/{tid}/oauth2/v2.0/token", doc["token_endpoint"]
    assert doc["authorization_endpoint"] == f"{base}/{tid}/oauth2/v2.0/authorize", doc["authorization_endpoint"]
    assert "RS256" in doc.get("id_token_signing_alg_values_supported", []), doc
    assert "code" in doc.get("response_types_supported", []), doc


def test_discovery_document_for_common(accord):
    r = accord.session().get(accord.openid_configuration_url("common"), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    doc = r.json()
    assert "{tenantid}" in doc.get("issuer", ""), doc.get("issuer")
    assert doc.get("authorization_endpoint", "").startswith(f"{accord.base}/common/"), doc
    assert doc.get("token_endpoint", "").startswith(f"{accord.base}/common/"), doc


def test_instance_discovery_answer(accord):
    """What MSAL sends: the authorize URL without the port (client-compat P3, 3.1)."""
    r = accord.session().get(
        f"{accord.base}/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"https://localhost/{accord.tid}/oauth2/v2.0/authorize",
        },
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert body.get("tenant_discovery_endpoint") == accord.openid_configuration_url(), body
    metadata = body.get("metadata") or []
    assert metadata and any(
        accord.base.removeprefix("https://") in m.get("aliases", []) for m in metadata
    ), body


def test_jwks_has_the_signing_key(accord):
    doc = accord.session().get(accord.openid_configuration_url(), timeout=HTTP_TIMEOUT_S).json()
    r = accord.session().get(doc["jwks_uri"], timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    keys = r.json().get("keys") or []
    assert keys, r.text
    for k in keys:
        assert k.get("kty") == "RSA" and k.get("kid") and k.get("n") and k.get("e"), k
    token = confidential_app(accord, accord.world.confidential).acquire_token_for_client([f"{GRAPH}/.default"])
    assert "access_token" in token, token
    kid = jwt_header(token["access_token"]).get("kid")
    assert kid in {k["kid"] for k in keys}, f"token kid {kid!r} not in JWKS"
