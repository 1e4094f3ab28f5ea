"""The consent failure paths as MSAL for Python shows them to the app.

- consent declined: Cancel on the consent prompt -> the redirect carries
  error=access_denied, error_subcode=cancel and AADSTS65004; MSAL returns the error;
- user not assigned: AADSTS50105 (ROPC result dict; interactively Accord's own error page,
  no redirect, as Entra);
- approval required: a permission only an administrator may grant -> the authorize step
  ends on Accord's "Approval required" page (no redirect, no code), the request is sent,
  and the user sees it pending in My Apps; silently (prompt=none) it is AADSTS65001;
- consent revoked then refresh: alice consents herself, revokes in My Apps (with the
  confirmation), and the next refresh is invalid_grant / consent_required / AADSTS65001 in
  `acquire_token_silent_with_error`, while `acquire_token_silent` gives None.
"""

from __future__ import annotations

import re

import pytest

from signin import SignInResult, page_text, parse_forms, press, sign_in
from support import HTTP_TIMEOUT_S, confidential_app, jwt_payload, scopes_of

pytestmark = pytest.mark.msal

# The driver must never reach an app from My Apps; nothing listens here.
NOWHERE = "https://nowhere.invalid/"


def _to_consent_prompt(accord, browser, cca, app, user, scopes):
    flow = cca.initiate_auth_code_flow(scopes, redirect_uri=app.redirect_uri)
    at = sign_in(browser, flow["auth_uri"], app.redirect_uri, user.upn, user.password, only_sign_in=True)
    assert at.location is None, f"expected a consent prompt, got a redirect: {at.location}"
    return flow, at


def test_consent_declined_is_access_denied_65004_cancel(accord):
    world = accord.world
    app, alice = world.no_grant, world.alice
    cca = confidential_app(accord, app)
    browser = accord.session()
    flow, prompt = _to_consent_prompt(accord, browser, cca, app, alice, ["User.Read"])
    text = page_text(prompt.page)
    assert "Permissions requested" in text and app.display_name in text, prompt.describe()

    landed = press(browser, prompt, r"\bcancel\b", app.redirect_uri)
    assert landed.location, "Cancel must send the browser back to the app\n" + landed.describe()
    params = landed.params
    assert "code" not in params, params
    assert params.get("error") == "access_denied", params
    assert params.get("error_subcode") == "cancel", params
    assert params.get("error_description", "").startswith("AADSTS65004"), params
    assert params.get("state") == flow["state"], params

    result = cca.acquire_token_by_auth_code_flow(flow, params)
    # MSAL hands back the first leg's error as is, minus anything but these keys (it drops
    # error_subcode: the app reads that from the redirect itself).
    assert "access_token" not in result, result
    assert result.get("error") == "access_denied", result
    assert result.get("error_description") == params["error_description"], result


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_user_not_assigned_is_50105(accord):
    world = accord.world
    app, alice, admin = world.assigned, world.alice, world.admin

    # ROPC: the token endpoint's answer, as MSAL's result dict.
    result = confidential_app(accord, app).acquire_token_by_username_password(
        alice.upn, alice.password, scopes=["User.Read"]
    )
    assert "access_token" not in result, result
    assert result.get("error") == "invalid_grant", result
    assert result.get("error_codes") == [50105], result
    description = result.get("error_description", "")
    assert description.startswith("AADSTS50105"), result
    assert f"'{alice.upn}' is blocked" in description and app.display_name in description, result

    # The assigned administrator gets in: the refusal is about alice, not the app.
    ok = confidential_app(accord, app).acquire_token_by_username_password(
        admin.upn, admin.password, scopes=["User.Read"]
    )
    assert "access_token" in ok, ok

    # Interactively Entra shows 50105 on its own page and never redirects to the app.
    cca = confidential_app(accord, app)
    flow = cca.initiate_auth_code_flow(["User.Read"], redirect_uri=app.redirect_uri)
    landed = sign_in(accord.session(), flow["auth_uri"], app.redirect_uri, alice.upn, alice.password)
    assert landed.location is None, f"an unassigned user was sent back to the app: {landed.location}"
    assert "AADSTS50105" in page_text(landed.page), landed.describe()


def test_approval_required_ends_at_the_request_page(accord):
    """User.Read.All needs an administrator; the tenant's request workflow is on."""
    world = accord.world
    app, alice = world.admin_only, world.alice
    cca = confidential_app(accord, app)
    browser = accord.session()
    flow, page = _to_consent_prompt(accord, browser, cca, app, alice, ["User.Read.All"])
    text = page_text(page.page)
    assert "Approval required" in text and app.display_name in text, page.describe()
    assert not re.search(r"\bAccept\b", text), "alice may not consent to User.Read.All herself\n" + page.describe()
    forms = parse_forms(page.page.text)
    assert any("reason" in f.names for f in forms), "the page asks for a justification\n" + page.describe()

    reason = "Interop: the directory report needs every user's profile."
    sent = press(browser, page, r"request approval", app.redirect_uri, fields={"reason": reason})
    # Like Entra, the flow ends on Accord: no redirect, so the app gets nothing to redeem.
    assert sent.location is None, f"approval required must not redirect to the app: {sent.location}"
    assert sent.page.status_code == 200 and "Request sent" in page_text(sent.page), sent.describe()

    # Silently (prompt=none, same session) MSAL gets the consent error, not a page.
    silent = cca.initiate_auth_code_flow(["User.Read.All"], redirect_uri=app.redirect_uri, prompt="none")
    landed = sign_in(browser, silent["auth_uri"], app.redirect_uri, alice.upn, alice.password, submit_forms=False)
    assert landed.location, "prompt=none must redirect with an error\n" + landed.describe()
    params = landed.params
    assert "code" not in params, params
    assert params.get("error") in ("interaction_required", "consent_required"), params
    assert params.get("error_description", "").startswith("AADSTS65001"), params
    result = cca.acquire_token_by_auth_code_flow(silent, params)
    assert "access_token" not in result and result.get("error") == params["error"], result

    # alice sees her request pending in My Apps.
    myapps = _my_apps(accord, browser, alice)
    pending = page_text(myapps.page).split("Pending", 1)[-1].split("Past", 1)[0]
    assert app.display_name in pending and reason in pending, myapps.describe()


def _my_apps(accord, browser, user) -> SignInResult:
    at = sign_in(browser, f"{accord.base}/myapps", NOWHERE, user.upn, user.password, only_sign_in=True)
    assert at.page is not None and at.page.status_code == 200, at.describe()
    assert at.page.url.split("?")[0].endswith("/myapps"), at.describe()
    return at


def _revoke_form(myapps: SignInResult, app_name: str):
    """The revoke form inside the My Apps entry of `app_name`."""
    for article in re.findall(r"(?s)<article\b.*?</article>", myapps.page.text):
        if app_name in article:
            forms = [f for f in parse_forms(article) if f.action.endswith("/myapps/revoke")]
            assert len(forms) == 1, f"{app_name}'s entry has {len(forms)} revoke forms\n" + myapps.describe()
            return forms[0]
    raise AssertionError(f"{app_name} is not on My Apps\n" + myapps.describe())


def _post_revoke(accord, browser, form, confirm: bool):
    data = [(k, v) for k, v in form.fields if k != "confirm"]
    if confirm:
        data.append(("confirm", "yes"))
    r = browser.post(f"{accord.base}/myapps/revoke", data=data, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert r.status_code in (302, 303), f"{r.status_code} {r.text[:300]}"
    return r.headers["Location"]


def test_consent_revoked_then_refresh_is_65001_consent_required(accord):
    world = accord.world
    app, alice = world.user_consent, world.alice
    scopes = ["User.Read"]
    cca = confidential_app(accord, app)
    browser = accord.session()

    # alice consents for herself (the driver presses Accept on the prompt).
    flow = cca.initiate_auth_code_flow(scopes, redirect_uri=app.redirect_uri)
    landed = sign_in(browser, flow["auth_uri"], app.redirect_uri, alice.upn, alice.password)
    assert any("decision" in step for step in landed.trail), "expected a consent prompt\n" + landed.describe()
    result = cca.acquire_token_by_auth_code_flow(flow, landed.params)
    assert "access_token" in result and result.get("refresh_token"), result
    assert "User.Read" in scopes_of(jwt_payload(result["access_token"]))
    (account,) = cca.get_accounts(username=alice.upn)
    assert "access_token" in (cca.acquire_token_silent(scopes, account=account, force_refresh=True) or {})

    # My Apps lists it as her own consent; without the confirmation nothing is revoked.
    myapps = _my_apps(accord, browser, alice)
    entry = page_text(myapps.page).split(app.display_name, 1)[1].split("Permissions it holds", 1)[0]
    assert "You consented on" in entry, myapps.describe()
    form = _revoke_form(myapps, app.display_name)
    assert "notice=unconfirmed" in _post_revoke(accord, browser, form, confirm=False)
    still = cca.acquire_token_silent(scopes, account=account, force_refresh=True)
    assert still and "access_token" in still, f"an unconfirmed revoke revoked: {still}"

    _post_revoke(accord, browser, form, confirm=True)
    assert app.display_name not in page_text(_my_apps(accord, browser, alice).page).split("Your requests", 1)[0]

    # The next refresh meets the revoked consent.
    assert cca.acquire_token_silent(scopes, account=account, force_refresh=True) is None
    error = cca.acquire_token_silent_with_error(scopes, account=account, force_refresh=True)
    assert error and "access_token" not in error, error
    assert error.get("error") == "invalid_grant", error
    assert error.get("suberror") == "consent_required", error
    assert error.get("error_codes") == [65001], error
    assert error.get("error_description", "").startswith("AADSTS65001"), error
    assert app.app_id in error["error_description"], error
