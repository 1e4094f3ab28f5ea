"""msgraph-sdk keeping a copy of a calendar in sync with Accord: calendarView delta rounds and
change notifications (subscriptions), entra-reference-wave2.md sections 8-9.

The reader is the SDK as its users write it: `GraphServiceClient` with azure-identity's
ClientSecretCredential for the Interop Confidential app (application Calendars.Read) and only
`request_adapter.base_url` pointed at Accord. The changes it should see are made by another
app, Interop Calendar Writer (application Calendars.ReadWrite), with plain HTTP calls, in
alice's mailbox. Every event a test creates is deleted again before it ends, so the other
tests still find alice's calendar as interop/scenario.toml declares it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.identity import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendar_view.calendar_view_request_builder import CalendarViewRequestBuilder
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder

from support import HTTP_TIMEOUT_S, confidential_app
from test_graph_sdk import GRAPH_DEFAULT, graph_client, run

PAGE_SIZE = 2
NOTIFICATION_WAIT_S = 20


# --------------------------------------------------------------------------- helpers


def parse_utc(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


def graph_time(at: datetime) -> dict:
    return {"dateTime": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


class Writer:
    """Interop Calendar Writer: app-only Calendars.ReadWrite, writing alice's events with plain
    HTTP. Remembers what it created and deletes whatever is left in cleanup()."""

    def __init__(self, accord):
        world = accord.world
        result = confidential_app(accord, world.calendar_writer).acquire_token_for_client(scopes=[GRAPH_DEFAULT])
        assert "access_token" in result, result
        self.http = accord.session()
        self.http.headers["Authorization"] = f"Bearer {result['access_token']}"
        self.events = f"{accord.base}/v1.0/users/{world.alice.id}/events"
        self.left: set[str] = set()

    def create(self, subject: str, start: datetime, minutes: int = 30) -> dict:
        r = self.http.post(self.events, json={
            "subject": subject,
            "start": graph_time(start),
            "end": graph_time(start + timedelta(minutes=minutes)),
        }, timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 201, (r.status_code, r.text)
        event = r.json()
        self.left.add(event["id"])
        return event

    def update(self, event_id: str, **fields) -> dict:
        r = self.http.patch(f"{self.events}/{event_id}", json=fields, timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def delete(self, event_id: str) -> None:
        r = self.http.delete(f"{self.events}/{event_id}", timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 204, (r.status_code, r.text)
        self.left.discard(event_id)

    def cleanup(self) -> None:
        for event_id in list(self.left):
            self.http.delete(f"{self.events}/{event_id}", timeout=HTTP_TIMEOUT_S)
        self.left.clear()
        self.http.close()


def reader(accord):
    world = accord.world
    cred = ClientSecretCredential(
        accord.tid, world.confidential.app_id, world.confidential.secret,
        authority=accord.base, disable_instance_discovery=True,
    )
    return graph_client(accord, cred, [GRAPH_DEFAULT]), cred


def paged(inspect: HeadersInspectionHandlerOption | None = None) -> RequestConfiguration:
    """What every request of a delta round carries: Prefer: odata.maxpagesize."""
    config = RequestConfiguration(options=[inspect] if inspect else None)
    config.headers.add("Prefer", f"odata.maxpagesize={PAGE_SIZE}")
    return config


async def delta_round(builder: DeltaRequestBuilder, first_page):
    """Follows @odata.nextLink from `first_page` to the page with @odata.deltaLink, the way the
    SDK's users do (`with_url`). Returns (pages as lists of events, deltaLink)."""
    pages, page = [], first_page
    while True:
        pages.append(page.value or [])
        if page.odata_next_link:
            assert not page.odata_delta_link, "a page carries a nextLink or a deltaLink, not both"
            assert len(pages) < 50, "the round does not end"
            page = await builder.with_url(page.odata_next_link).get(request_configuration=paged())
            continue
        assert page.odata_delta_link, "the last page of a round carries @odata.deltaLink"
        return pages, page.odata_delta_link


def removed_reason(event) -> str | None:
    """msgraph-sdk's Event has no `@removed` property: the JSON object lands in additional_data."""
    removed = (event.additional_data or {}).get("@removed")
    return removed.get("reason") if isinstance(removed, dict) else removed


class Receiver:
    """A notification endpoint on http://127.0.0.1:<free port>: answers Graph's validation
    request (POST ?validationToken=...) with the decoded token as text/plain, or with a wrong
    one when `echo_token` is false, and records every other POST's JSON body."""

    def __init__(self, echo_token: bool = True):
        self.validations: list[tuple[str, str, str]] = []  # (path, content type, token)
        self.notifications: list[tuple[str, dict]] = []  # (path, body)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                token = parse_qs(url.query).get("validationToken")
                if token:
                    with receiver.lock:
                        receiver.validations.append((url.path, self.headers.get("Content-Type", ""), token[0]))
                    answer = (token[0] if echo_token else "not the validation token").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                with receiver.lock:
                    receiver.notifications.append((url.path, json.loads(body)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def change_notifications(self) -> list[dict]:
        with self.lock:
            return [n for path, body in self.notifications if path == "/notify" for n in body.get("value", [])]

    async def wait_for(self, what: str, match, timeout_s: float = NOTIFICATION_WAIT_S) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [n for n in self.change_notifications() if match(n)]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        pytest.fail(f"no {what} notification within {timeout_s} s; received: {self.notifications}")


# --------------------------------------------------------------------------- delta


def test_calendar_view_delta_rounds_with_the_sdk(accord):
    world = accord.world
    alice = world.alice
    scenario = world.events_of(alice.upn)
    assert len(scenario) >= 2, "interop/scenario.toml gives alice at least two events"
    first_start = parse_utc(scenario[0].start)
    window_start = first_start - timedelta(hours=1)
    window_end = max(parse_utc(e.end) for e in scenario) + timedelta(hours=1)

    writer = Writer(accord)
    tag = uuid.uuid4().hex[:8]
    # Two events of the test's own in the window (one is deleted later): five in all, three pages.
    kept = writer.create(f"Sync kept {tag}", first_start + timedelta(hours=2))
    doomed = writer.create(f"Sync doomed {tag}", first_start + timedelta(hours=3))

    client, cred = reader(accord)
    users = client.users.by_user_id(alice.id)
    window = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time=window_start.isoformat().replace("+00:00", "Z"),
        end_date_time=window_end.isoformat().replace("+00:00", "Z"),
    )
    view_window = CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
        start_date_time=window.start_date_time, end_date_time=window.end_date_time,
    )
    added = {}

    async def sync():
        delta = users.calendar_view.delta
        inspect = HeadersInspectionHandlerOption(inspect_request_headers=False)
        config = paged(inspect)
        config.query_parameters = window
        first = await delta.get(request_configuration=config)
        initial, delta_link = await delta_round(delta, first)
        view = await users.calendar_view.get(request_configuration=RequestConfiguration(query_parameters=view_window))

        # The writer changes the window: one event more, one less.
        added.update(writer.create(f"Sync added {tag}", first_start + timedelta(hours=4)))
        writer.delete(doomed["id"])

        changes_first = await delta.with_url(delta_link).get(request_configuration=paged())
        changes, next_delta_link = await delta_round(delta, changes_first)

        # A token Accord never issued: the SDK raises ODataError, status 410.
        garbage = delta_link.split("$deltatoken=")[0] + "$deltatoken=" + "A" * 40
        try:
            await delta.with_url(garbage).get(request_configuration=paged())
        except ODataError as e:
            stale = e
        else:
            stale = None
        return inspect.response_headers, initial, delta_link, view, changes, next_delta_link, stale

    try:
        headers, initial, delta_link, view, changes, next_delta_link, stale = run(client, cred, sync)
    finally:
        writer.cleanup()

    # Initial round: pages of at most two, every event of the window exactly once.
    assert headers.get("preference-applied") == {f"odata.maxpagesize={PAGE_SIZE}"}, headers.get_all()
    sizes = [len(p) for p in initial]
    assert all(n <= PAGE_SIZE for n in sizes), sizes
    items = [e for p in initial for e in p]
    assert len(initial) >= 2 and len(items) > PAGE_SIZE, f"expected several pages, got sizes {sizes}"
    ids = [e.id for e in items]
    assert len(ids) == len(set(ids)), f"an event came twice: {ids}"
    assert all(removed_reason(e) is None for e in items), "an initial round holds no removals"
    expected_subjects = sorted([e.subject for e in scenario] + [kept["subject"], doomed["subject"]])
    assert sorted(e.subject for e in items) == expected_subjects, [e.subject for e in items]
    assert set(ids) == {e.id for e in view.value}, "the round holds what calendarView lists for the window"
    assert {kept["id"], doomed["id"]} <= set(ids)
    assert "$deltatoken=" in delta_link and "/calendarView/delta" in delta_link, delta_link

    # Round two: exactly the two changes, the new event in full, the deleted one @removed.
    got = {e.id: e for p in changes for e in p}
    assert set(got) == {added["id"], doomed["id"]}, {i: (e.subject, removed_reason(e)) for i, e in got.items()}
    new = got[added["id"]]
    assert removed_reason(new) is None
    assert new.subject == added["subject"], new.subject
    assert new.start.date_time.startswith(added["start"]["dateTime"][:19]), new.start.date_time
    assert new.organizer.email_address.address.lower() == alice.upn, new.organizer
    gone = got[doomed["id"]]
    assert removed_reason(gone) == "deleted", gone.additional_data
    assert gone.odata_type == "#microsoft.graph.event", gone.odata_type
    assert gone.subject is None, "a removed item carries its id only"
    assert next_delta_link and next_delta_link != delta_link

    # The SDK's error for a stale or unknown token.
    assert stale is not None, "a made-up $deltatoken was accepted"
    assert stale.response_status_code == 410, stale.response_status_code
    assert stale.error and stale.error.code == "SyncStateNotFound", stale.error


# --------------------------------------------------------------------------- subscriptions


def subscription_expiry(hours: int) -> datetime:
    """Now plus `hours`, to the second (Graph answers with whole seconds)."""
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).replace(microsecond=0)


def test_change_notifications_through_the_sdk(accord):
    world = accord.world
    alice = world.alice
    client_state = f"interop-{uuid.uuid4().hex}"
    resource = f"users/{alice.id}/events"
    # More than an hour ahead: in a subscription's last hour Graph (and Accord) send
    # reauthorizationRequired lifecycle notifications, which this test does not look at.
    expires = subscription_expiry(3)
    renewed_to = subscription_expiry(4)
    start = parse_utc(world.events_of(alice.upn)[0].start) + timedelta(hours=5)
    writer = Writer(accord)
    client, cred = reader(accord)
    subscriptions = client.subscriptions

    async def subscribe_and_watch(receiver: Receiver):
        created = await subscriptions.post(Subscription(
            change_type="created,updated,deleted",
            notification_url=f"{receiver.base}/notify",
            lifecycle_notification_url=f"{receiver.base}/lifecycle",
            resource=resource,
            expiration_date_time=expires,
            client_state=client_state,
        ))
        by_id = subscriptions.by_subscription_id(created.id)
        seen = {}
        try:
            event = writer.create(f"Sync notified {uuid.uuid4().hex[:8]}", start)
            seen["created"] = await receiver.wait_for(
                "created", lambda n: n.get("changeType") == "created" and n["resourceData"]["id"] == event["id"])
            writer.update(event["id"], subject=event["subject"] + " (moved)")
            seen["updated"] = await receiver.wait_for(
                "updated", lambda n: n.get("changeType") == "updated" and n["resourceData"]["id"] == event["id"])
            writer.delete(event["id"])
            seen["deleted"] = await receiver.wait_for(
                "deleted", lambda n: n.get("changeType") == "deleted" and n["resourceData"]["id"] == event["id"])

            listed = await subscriptions.get()
            renewed = await by_id.patch(Subscription(expiration_date_time=renewed_to))
            await by_id.reauthorize.post()  # 204: the SDK returns None
            fetched = await by_id.get()
        finally:
            await by_id.delete()
        try:
            await by_id.get()
        except ODataError as e:
            after_delete = e
        else:
            after_delete = None
        return created, seen, event, listed, renewed, fetched, after_delete

    try:
        with Receiver() as receiver:
            created, seen, event, listed, renewed, fetched, after_delete = run(
                client, cred, lambda: subscribe_and_watch(receiver))
    finally:
        writer.cleanup()

    # What the SDK read back from the creation.
    assert created.id, "subscription without id"
    assert created.resource == resource, created.resource
    assert created.change_type == "created,updated,deleted", created.change_type
    assert created.notification_url == f"{receiver.base}/notify", created.notification_url
    assert created.lifecycle_notification_url == f"{receiver.base}/lifecycle", created.lifecycle_notification_url
    assert created.client_state == client_state, created.client_state
    assert created.application_id == world.confidential.app_id, created.application_id
    assert created.expiration_date_time == expires, (created.expiration_date_time, expires)

    # Both URLs were validated before the subscription existed, with an opaque token.
    assert sorted(path for path, _, _ in receiver.validations) == ["/lifecycle", "/notify"], receiver.validations
    for _, content_type, token in receiver.validations:
        assert content_type.startswith("text/plain"), content_type
        assert token, "empty validationToken"

    # Each change of the event was POSTed to the notification URL.
    for change, n in seen.items():
        assert n["subscriptionId"] == created.id, n
        assert n["clientState"] == client_state, n
        assert n["changeType"] == change, n
        assert n["tenantId"] == accord.tid, n
        assert n["resource"] == f"Users/{alice.id}/Events/{event['id']}", n
        data = n["resourceData"]
        assert data["id"] == event["id"], n
        assert data["@odata.type"] == "#Microsoft.Graph.Event", n
        assert data["@odata.id"] == f"Users/{alice.id}/Events/{event['id']}", n
        assert data.get("@odata.etag"), n
        assert parse_utc(n["subscriptionExpirationDateTime"]) == expires, n
    assert not [path for path, _ in receiver.notifications if path != "/notify"], receiver.notifications

    # List, renew, read, delete.
    assert created.id in [s.id for s in listed.value], [s.id for s in listed.value]
    assert renewed.id == created.id and renewed.expiration_date_time == renewed_to, renewed.expiration_date_time
    assert fetched.expiration_date_time == renewed_to, fetched.expiration_date_time
    assert after_delete is not None, "the subscription is still there after DELETE"
    assert after_delete.response_status_code == 404, after_delete.response_status_code


def test_subscription_refused_when_the_receiver_fails_validation(accord):
    world = accord.world
    client, cred = reader(accord)

    async def subscribe(receiver: Receiver):
        try:
            await client.subscriptions.post(Subscription(
                change_type="created",
                notification_url=f"{receiver.base}/notify",
                resource=f"users/{world.alice.id}/events",
                expiration_date_time=subscription_expiry(1),
                client_state="never-created",
            ))
        except ODataError as e:
            refused = e
        else:
            refused = None
        listed = await client.subscriptions.get()
        return refused, listed

    with Receiver(echo_token=False) as receiver:
        refused, listed = run(client, cred, lambda: subscribe(receiver))

    assert [path for path, _, _ in receiver.validations] == ["/notify"], receiver.validations
    assert refused is not None, "a subscription whose URL answered the wrong token was created"
    assert refused.response_status_code == 400, refused.response_status_code
    assert refused.error and refused.error.code == "ValidationError", refused.error
    assert not [s for s in listed.value if s.notification_url == f"{receiver.base}/notify"], listed.value
