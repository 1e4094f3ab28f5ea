"""Device code flow (issue 14, part 1) with unmodified clients: MSAL Python's
`initiate_device_flow` + `acquire_token_by_device_flow`, and azure-identity's
`DeviceCodeCredential` (its prompt callback is where a person would read the code). The person is
played by a form driver on Accord's verification page: the code, the confirmation, sign-in and
consent pages, as a browser without JavaScript would."""

import msal
import requests
from azure.identity import DeviceCodeCredential

from signin import parse_forms
from support import GRAPH, HTTP_TIMEOUT_S, jwt_payload, public_app

GRAPH_USER_READ = f"{GRAPH}/User.Read"


def _visit_verification_page(session: requests.Session, uri: str, user_code: str, upn: str, password: str,
                             button: str = "continue") -> str:
    """Types the code, answers the confirmation with `button`, signs in, accepts any consent.
    Returns the last page's text."""
    resp = session.get(uri, timeout=HTTP_TIMEOUT_S)
    for _ in range(8):
        forms = parse_forms(resp.text) if "html" in resp.headers.get("content-type", "") else []
        if resp.status_code != 200 or not forms:
            return resp.text
        form = forms[0]
        data = [(k, v) for k, v in form.fields if k not in ("otc", "login", "passwd")]
        if "otc" in form.names:
            data.append(("otc", user_code.lower()))
        if "login" in form.names:
            data += [("login", upn), ("passwd", password)]
        choices = {value: name for name, value, _ in form.submits if name}
        if "continue" in choices or "cancel" in choices:
            data.append(("decision", button))
        elif "accept" in choices:
            data.append(("decision", "accept"))
        resp = session.post(requests.compat.urljoin(resp.url, form.action), data=data, timeout=HTTP_TIMEOUT_S)
    raise AssertionError(f"the verification pages did not end: {resp.text[:2000]}")


def test_msal_python_device_flow(accord):
    world = accord.world
    pca = public_app(accord, world.public)
    flow = pca.initiate_device_flow(scopes=["User.Read"])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{accord.base}/devicelogin", flow
    assert flow["user_code"] in flow["message"], flow

    # The person answers before the first poll, so MSAL gets the tokens at once.
    page = _visit_verification_page(accord.session(), flow["verification_uri"], flow["user_code"],
                                    world.alice.upn, world.alice.password)
    assert "You have signed in" in page, page
    result = pca.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    claims = jwt_payload(result["access_token"])
    assert claims.get("preferred_username") == world.alice.upn, claims
    assert claims.get("azp") == world.public.app_id, claims
    assert result.get("refresh_token"), result
    assert pca.get_accounts(username=world.alice.upn), "MSAL cached the account (client_info)"


def test_msal_python_device_flow_declined(accord):
    world = accord.world
    pca = public_app(accord, world.public)
    flow = pca.initiate_device_flow(scopes=["User.Read"])
    page = _visit_verification_page(accord.session(), flow["verification_uri"], flow["user_code"],
                                    world.alice.upn, world.alice.password, button="cancel")
    assert "Sign-in cancelled" in page, page
    result = pca.acquire_token_by_device_flow(flow)
    assert result.get("error") == "authorization_declined", result


def test_azure_identity_device_code_credential(accord):
    world = accord.world
    answered = []

    def prompt(verification_uri, user_code, expires_on):
        # Where a CLI prints "open … and enter the code …", the person does so.
        page = _visit_verification_page(accord.session(), verification_uri, user_code,
                                        world.alice.upn, world.alice.password)
        answered.append("You have signed in" in page)

    cred = DeviceCodeCredential(
        client_id=world.public.app_id,
        tenant_id=accord.tid,
        authority=accord.base,
        prompt_callback=prompt,
        disable_instance_discovery=True,
    )
    token = cred.get_token(GRAPH_USER_READ)
    assert answered == [True], answered
    claims = jwt_payload(token.token)
    assert claims.get("preferred_username") == world.alice.upn, claims
