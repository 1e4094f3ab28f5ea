"""Error paths real clients meet: missing consent, bad secret, unknown tenant."""

import uuid

import pytest

from signin import page_text, parse_forms, sign_in
from support import HTTP_TIMEOUT_S, confidential_app

pytestmark = pytest.mark.msal


def test_auth_code_without_consent_is_65001(accord):
    """The app has no grant. alice is signed in (SSO session from an app she may use);
    with prompt=none the server may show no consent page, so the browser must land on
    the app's redirect_uri with error=... and "AADSTS65001: The user or administrator has
    not consented to use the application ...", as Entra answers.
    (Without prompt=none, user_consent = "all" would rightly offer alice a consent page.)
    """
    world = accord.world
    alice, good, bad = world.alice, world.confidential, world.no_grant
    browser = accord.session()

    # 1. sign in once, through an app that has consent: this establishes the session.
    good_flow = confidential_app(accord, good).initiate_auth_code_flow(["User.Read"], redirect_uri=good.redirect_uri)
    first = sign_in(browser, good_flow["auth_uri"], good.redirect_uri, alice.upn, alice.password)
    assert first.location and "code" in first.params, "sign-in through the consented app failed\n" + first.describe()

    # 2. the app without any grant, silently.
    cca = confidential_app(accord, bad)
    flow = cca.initiate_auth_code_flow(["User.Read"], redirect_uri=bad.redirect_uri, prompt="none")
    landed = sign_in(browser, flow["auth_uri"], bad.redirect_uri, alice.upn, alice.password, submit_forms=False)
    # Entra redirects (it may show no page with prompt=none): interaction_required, as its
    # documentation for prompt=none says, with AADSTS65001 in the description.
    assert landed.location is not None, "expected a redirect with error=... AADSTS65001\n" + landed.describe()
    params = landed.params
    assert "code" not in params, f"a code was issued to an app nobody consented to: {params}"
    assert params.get("error") == "interaction_required", params
    assert params.get("error_description", "").startswith("AADSTS65001"), params
    assert params.get("state") == flow["state"], params
    # And MSAL reports it as an error, not a token.
    result = cca.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" not in result and result.get("error") == params["error"], result


def test_interactive_sign_in_without_consent_issues_no_code(accord):
    """Interactively, after sign-in, the app with no grant gets no code behind the user's
    back: the browser meets the consent prompt (user_consent = "all" lets alice consent to
    User.Read, and Entra asks her). The prompt itself is not accepted here.
    """
    world = accord.world
    alice, bad = world.alice, world.no_grant
    flow = confidential_app(accord, bad).initiate_auth_code_flow(["User.Read"], redirect_uri=bad.redirect_uri)
    landed = sign_in(accord.session(), flow["auth_uri"], bad.redirect_uri, alice.upn, alice.password, only_sign_in=True)
    assert landed.location is None, f"no redirect (no code, no error) before she answers: {landed.describe()}"
    assert landed.page.status_code == 200, landed.describe()
    text = page_text(landed.page)
    forms = parse_forms(landed.page.text)
    assert forms, "expected the consent prompt\n" + landed.describe()
    assert bad.display_name in text, "the consent prompt names the app\n" + landed.describe()
    assert "Accept" in text, "the prompt asks her to accept\n" + landed.describe()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ropc_without_consent_is_65001(accord):
    """ROPC can show no consent page: Entra answers invalid_grant AADSTS65001."""
    world = accord.world
    cca = confidential_app(accord, world.no_grant)
    result = cca.acquire_token_by_username_password(world.alice.upn, world.alice.password, scopes=["User.Read"])
    assert "access_token" not in result, result
    assert result.get("error") == "invalid_grant", result
    assert result.get("suberror") == "consent_required", result
    assert result.get("error_codes") == [65001], result


def test_client_credentials_wrong_secret(accord):
    cca = confidential_app(accord, accord.world.confidential, secret="not-the-secret")
    result = cca.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" not in result, result
    assert result.get("error") == "invalid_client", result
    assert 7000215 in (result.get("error_codes") or []), result
    assert result.get("error_description", "").startswith("AADSTS7000215"), result


def test_unknown_tenant(accord):
    unknown = str(uuid.uuid4())
    r = accord.session().get(accord.openid_configuration_url(unknown), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 400, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert body.get("error_codes") == [90002], body
    assert "AADSTS90002" in body.get("error_description", ""), body

    with pytest.raises(ValueError) as excinfo:
        confidential_app(accord, accord.world.confidential, tenant=unknown)
    # MSAL wraps the discovery failure; the original one (quoting our body) is its context.
    assert "90002" in str(excinfo.value.__context__), excinfo.value.__context__
