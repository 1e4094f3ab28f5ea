"""authlib as an independent OIDC client (client-compat 3.5): discovery, code flow with
PKCE (S256) through Accord's sign-in page, client_secret_post, then the id token checked
the way an OIDC relying party must: signature against the JWKS, iss, aud, nonce, at_hash."""

import warnings

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

# authlib 1.9 deprecates authlib.jose for joserfc (and forces its deprecation warnings
# to "always", past pytest.ini's filters); this is still the documented jwt.decode(..,
# claims_cls=CodeIDToken) path of client-compat 3.5, used on purpose.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, jwt
    from authlib.jose import errors as authlib_errors
    from authlib.oidc.core import CodeIDToken

from joserfc import errors as joserfc_errors

from signin import sign_in
from support import HTTP_TIMEOUT_S

# authlib 1.9's authlib.jose is a deprecated layer over joserfc: depending on the code
# path the refusal comes as authlib's or joserfc's exception class.
InvalidClaimError = (authlib_errors.InvalidClaimError, joserfc_errors.InvalidClaimError)
BadSignatureError = (authlib_errors.BadSignatureError, joserfc_errors.BadSignatureError)

SCOPE = "openid profile email offline_access User.Read"


def discover(accord) -> dict:
    r = accord.session().get(accord.openid_configuration_url(), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["issuer"] == f"{accord.base}/{accord.tid}/v2.0", meta["issuer"]
    assert "S256" in meta.get("code_challenge_methods_supported", ["S256"]), meta
    return meta


def oauth_session(accord, app) -> OAuth2Session:
    client = OAuth2Session(
        app.app_id,
        app.secret,
        scope=SCOPE,
        redirect_uri=app.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )
    client.trust_env = False
    client.verify = accord.ca
    return client


def authorize(accord, client, meta, app, user, verifier, nonce):
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    assert f"code_challenge={create_s256_code_challenge(verifier)}" in url, url
    assert "code_challenge_method=S256" in url, url
    landed = sign_in(accord.session(), url, app.redirect_uri, user.upn, user.password)
    assert landed.location, landed.describe()
    assert landed.params.get("state") == state, landed.params
    return landed.location


def test_code_flow_with_pkce_and_id_token_validated_against_jwks(accord):
    world = accord.world
    app, alice = world.confidential, world.alice
    meta = discover(accord)
    with oauth_session(accord, app) as client:
        verifier, nonce = generate_token(48), generate_token(20)
        location = authorize(accord, client, meta, app, alice, verifier, nonce)
        token = client.fetch_token(
            meta["token_endpoint"], authorization_response=location, code_verifier=verifier
        )
    assert token.get("token_type", "").lower() == "bearer", token
    assert token.get("access_token") and token.get("refresh_token") and token.get("id_token"), token.keys()

    jwks_doc = accord.session().get(meta["jwks_uri"], timeout=HTTP_TIMEOUT_S).json()
    keys = JsonWebKey.import_key_set(jwks_doc)
    params = {"nonce": nonce, "client_id": app.app_id, "access_token": token["access_token"]}
    options = {
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": app.app_id},
    }

    claims = jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                        claims_options=options, claims_params=params)
    claims.validate()  # iss, aud, exp, iat, nonce, azp vs client_id, at_hash (when present)
    assert claims.header["alg"] == "RS256" and claims.header.get("kid"), claims.header
    assert claims["iss"] == meta["issuer"]
    assert claims["aud"] == app.app_id
    assert claims["nonce"] == nonce
    assert claims["tid"] == accord.tid
    assert claims["oid"] == alice.id
    assert claims["preferred_username"] == alice.upn

    # The same checks must refuse what is wrong.
    wrong_nonce = jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken, claims_options=options,
                             claims_params={**params, "nonce": "not-the-nonce"})
    with pytest.raises(InvalidClaimError, match="nonce"):
        wrong_nonce.validate()
    other_app = jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                           claims_options={**options, "aud": {"essential": True, "value": world.public.app_id}},
                           claims_params={**params, "client_id": world.public.app_id})
    with pytest.raises(InvalidClaimError, match="aud"):
        other_app.validate()
    head, body, sig = token["id_token"].split(".")
    forged = ".".join((head, body, ("A" if sig[0] != "A" else "B") + sig[1:]))
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, keys, claims_cls=CodeIDToken)


def test_code_redeemed_with_wrong_verifier_is_refused(accord):
    world = accord.world
    app, alice = world.confidential, world.alice
    meta = discover(accord)
    with oauth_session(accord, app) as client:
        verifier = generate_token(48)
        location = authorize(accord, client, meta, app, alice, verifier, generate_token(20))
        from authlib.integrations.base_client import OAuthError

        with pytest.raises(OAuthError) as e:
            client.fetch_token(meta["token_endpoint"], authorization_response=location,
                               code_verifier=generate_token(48))
    assert e.value.error == "invalid_grant", (e.value.error, e.value.description)
    assert "AADSTS50148" in (e.value.description or "") or "verifier" in (e.value.description or "").lower(), e.value.description
