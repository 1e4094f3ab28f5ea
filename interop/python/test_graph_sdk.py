"""msgraph-sdk (Graph SDK for Python) reading calendars from Accord (client-compat 3.3).

The SDK is used the way its users write it: `GraphServiceClient(credentials=..., scopes=...)`
with the default httpx client and middleware, and only `request_adapter.base_url` pointed
at Accord. App-only: azure-identity's ClientSecretCredential. Delegated: azure-identity's
AuthorizationCodeCredential with a code from Accord's real sign-in page.
"""

import asyncio
from urllib.parse import urlencode

from azure.identity import AuthorizationCodeCredential, ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.users.item.calendar_view.calendar_view_request_builder import CalendarViewRequestBuilder

from signin import sign_in
from support import GRAPH, jwt_payload, scopes_of

GRAPH_DEFAULT = f"{GRAPH}/.default"


def graph_client(accord, credential, scopes) -> GraphServiceClient:
    client = GraphServiceClient(credentials=credential, scopes=scopes)
    client.request_adapter.base_url = f"{accord.base}/v1.0"
    return client


def run(client: GraphServiceClient, credential, read):
    """asyncio.run(read()), then close the SDK's httpx client and the credential's HTTP
    session: idle keep-alive connections left open would hold up the server's graceful
    shutdown at the end of the tier."""

    async def main():
        try:
            return await read()
        finally:
            http = client.request_adapter._http_client
            await http.aclose()
            # msgraph-core 1.5.2: AsyncGraphTransport wraps httpx's transport but has no
            # aclose() of its own, so the line above leaves the connection pool open.
            inner = getattr(http._transport, "transport", None)
            if inner is not None:
                await inner.aclose()

    try:
        return asyncio.run(main())
    finally:
        credential.close()


def assert_events_match_scenario(events, expected, owner_upn):
    got = [(e.subject, e.start.date_time, e.start.time_zone) for e in events]
    assert len(events) == len(expected), f"expected {[e.subject for e in expected]}, got {got}"
    for ev, want in zip(events, expected):
        assert ev.subject == want.subject, got
        # Graph writes "2026-12-01T09:00:00.0000000" with timeZone "UTC".
        assert ev.start.date_time.startswith(want.start.removesuffix("Z")), (ev.start.date_time, want.start)
        assert ev.end.date_time.startswith(want.end.removesuffix("Z")), (ev.end.date_time, want.end)
        assert ev.start.time_zone == "UTC", ev.start.time_zone
        assert ev.id, "event without id"
        assert ev.organizer and ev.organizer.email_address.address.lower() == owner_upn, ev.organizer


def test_app_only_users_calendar_events(accord):
    world = accord.world
    alice = world.alice
    assert alice.id, "interop/scenario.toml gives alice a fixed object id"
    expected = world.events_of(alice.upn)
    assert expected, "interop/scenario.toml declares events for alice"

    cred = ClientSecretCredential(
        accord.tid, world.confidential.app_id, world.confidential.secret,
        authority=accord.base, disable_instance_discovery=True,
    )
    client = graph_client(accord, cred, [GRAPH_DEFAULT])

    # A window that holds the first event only: it ends when the second one starts.
    first, rest = expected[0], expected[1:]
    assert rest, "interop/scenario.toml gives alice at least two events"
    window = RequestConfiguration(
        query_parameters=CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
            start_date_time=first.start, end_date_time=rest[0].start,
        )
    )

    async def read():
        by_id = await client.users.by_user_id(alice.id).calendar.events.get()
        by_upn = await client.users.by_user_id(alice.upn).events.get()
        view = await client.users.by_user_id(alice.id).calendar_view.get(request_configuration=window)
        return by_id, by_upn, view

    by_id, by_upn, view = run(client, cred, read)
    assert_events_match_scenario(by_id.value, expected, alice.upn)
    assert [e.id for e in by_upn.value] == [e.id for e in by_id.value]
    assert_events_match_scenario(view.value, [first], alice.upn)


def test_delegated_me_and_events(accord):
    world = accord.world
    app, alice = world.confidential, world.alice
    expected = world.events_of(alice.upn)
    # Short Graph scope names: the token response names them so ("Calendars.Read", as
    # Entra does), and azure-identity looks its cache up by the names the SDK asks for.
    scopes = ["Calendars.Read", "User.Read"]

    # The browser part: Accord's sign-in page gives the app a code ...
    query = urlencode({
        "client_id": app.app_id,
        "response_type": "code",
        "redirect_uri": app.redirect_uri,
        "response_mode": "query",
        "scope": " ".join(scopes + ["offline_access", "openid"]),
        "state": "graph-sdk-state",
    })
    landed = sign_in(accord.session(), f"{accord.authority()}/oauth2/v2.0/authorize?{query}",
                     app.redirect_uri, alice.upn, alice.password)
    assert landed.location, landed.describe()
    params = landed.params
    assert params.get("state") == "graph-sdk-state" and params.get("code"), params

    # ... which azure-identity redeems when the SDK first asks for a token.
    cred = AuthorizationCodeCredential(
        accord.tid, app.app_id, params["code"], app.redirect_uri,
        client_secret=app.secret, authority=accord.base, disable_instance_discovery=True,
    )
    client = graph_client(accord, cred, scopes)

    async def read():
        me = await client.me.get()  # redeems the code
        events = await client.me.events.get()  # the cached token
        return me, events

    me, events = run(client, cred, read)
    assert me.id == alice.id, me.id
    assert me.user_principal_name == alice.upn, me.user_principal_name
    assert_events_match_scenario(events.value, expected, alice.upn)

    # The token the SDK sent (kiota asks with enable_cae=True: azure-identity's CAE cache).
    token = cred.get_token(*scopes, enable_cae=True)
    claims = jwt_payload(token.token)
    assert claims.get("oid") == alice.id and claims.get("tid") == accord.tid, claims
    assert {"Calendars.Read", "User.Read"} <= scopes_of(claims), claims
    assert "roles" not in claims, claims


def test_batch_through_the_sdk_batch_builder(accord):
    """msgraph-sdk's own batch builder: requests made by the SDK, sent as one $batch, each
    answered as if sent alone (a part the app may not read is a 403 inside a 200)."""
    from msgraph_core.requests.batch_request_content import BatchRequestContent
    from msgraph_core.requests.batch_request_item import BatchRequestItem

    world = accord.world
    alice = world.alice
    cred = ClientSecretCredential(
        accord.tid, world.confidential.app_id, world.confidential.secret,
        authority=accord.base, disable_instance_discovery=True,
    )
    client = graph_client(accord, cred, [GRAPH_DEFAULT])

    async def read():
        user = BatchRequestItem(request_information=client.users.by_user_id(alice.id).to_get_request_information())
        events = BatchRequestItem(
            request_information=client.users.by_user_id(alice.id).calendar.events.to_get_request_information()
        )
        groups = BatchRequestItem(request_information=client.groups.to_get_request_information())
        content = BatchRequestContent({item.id: item for item in (user, events, groups)})
        answers = await client.batch.post(batch_request_content=content)
        return user.id, events.id, groups.id, answers

    user_id, events_id, groups_id, answers = run(client, cred, read)
    by_id = answers.responses
    assert by_id[user_id].status == 200, by_id[user_id].body
    assert by_id[events_id].status == 200, by_id[events_id].body
    assert by_id[groups_id].status == 403, "no Group.Read.All: refused as if alone"
