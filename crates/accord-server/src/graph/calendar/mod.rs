//! Office 365 calendars: events, calendar events and calendar views of `/me` and
//! `/users/{id|upn}`, read and written with exactly the permissions the token carries. The event
//! JSON is in `event_json.rs`, the request body's reading in `event_input.rs`.
//!
//! Permission matrix (docs/graph-api.md):
//! * delegated `Calendars.ReadBasic`: read the signed-in user's events without body,
//!   bodyPreview, attendees and onlineMeeting; `Calendars.Read`: read them whole;
//!   `Calendars.ReadWrite`: also create, update, delete. Only the signed-in user's own calendar.
//! * application `Calendars.Read` / `Calendars.ReadWrite`: any user of the token's tenant.
//! * users of other tenants do not exist for the caller (404).

use super::auth::Caller;
use super::errors::GraphError;
use super::odata::{self, Prop, PropType, QueryOptions, ResourceSpec};
use super::request::{json_response, GraphPath};
use super::timezone::{preferred_timezone, NamedZone};
use crate::service::calendar_sync::{self, EventChange};
use crate::state::{AppState, SharedState};
use accord_core::directory::{CalendarEvent, User};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

pub mod delta;
mod event_input;
mod event_json;

use super::users::{find_user, invalid_user};
use event_input::*;
use event_json::*;

// ---------------------------------------------------------------------------------------------
// Resource descriptions

const EVENT_SELECT: &[&str] = &[
    "id",
    "allowNewTimeProposals",
    "attendees",
    "body",
    "bodyPreview",
    "categories",
    "changeKey",
    "createdDateTime",
    "end",
    "hasAttachments",
    "hideAttendees",
    "iCalUId",
    "importance",
    "isAllDay",
    "isCancelled",
    "isDraft",
    "isOnlineMeeting",
    "isOrganizer",
    "isReminderOn",
    "lastModifiedDateTime",
    "location",
    "locations",
    "onlineMeeting",
    "onlineMeetingProvider",
    "onlineMeetingUrl",
    "organizer",
    "originalEndTimeZone",
    "originalStartTimeZone",
    "recurrence",
    "reminderMinutesBeforeStart",
    "responseRequested",
    "responseStatus",
    "sensitivity",
    "seriesMasterId",
    "showAs",
    "start",
    "subject",
    "transactionId",
    "type",
    "webLink",
];

const ATTENDEE_PROPS: &[Prop] = &[
    Prop { path: "type", ty: PropType::String },
    Prop { path: "emailAddress/address", ty: PropType::String },
    Prop { path: "emailAddress/name", ty: PropType::String },
    Prop { path: "status/response", ty: PropType::String },
];

const EVENT_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "subject", ty: PropType::String },
    Prop { path: "bodyPreview", ty: PropType::String },
    Prop { path: "body/content", ty: PropType::String },
    Prop { path: "body/contentType", ty: PropType::String },
    Prop { path: "start/dateTime", ty: PropType::DateTime },
    Prop { path: "start/timeZone", ty: PropType::String },
    Prop { path: "end/dateTime", ty: PropType::DateTime },
    Prop { path: "end/timeZone", ty: PropType::String },
    Prop { path: "location/displayName", ty: PropType::String },
    Prop { path: "organizer/emailAddress/address", ty: PropType::String },
    Prop { path: "organizer/emailAddress/name", ty: PropType::String },
    Prop { path: "attendees", ty: PropType::Objects(ATTENDEE_PROPS) },
    Prop { path: "categories", ty: PropType::Strings },
    Prop { path: "isOnlineMeeting", ty: PropType::Bool },
    Prop { path: "onlineMeetingProvider", ty: PropType::String },
    Prop { path: "isAllDay", ty: PropType::Bool },
    Prop { path: "isCancelled", ty: PropType::Bool },
    Prop { path: "isOrganizer", ty: PropType::Bool },
    Prop { path: "hasAttachments", ty: PropType::Bool },
    Prop { path: "showAs", ty: PropType::String },
    Prop { path: "type", ty: PropType::String },
    Prop { path: "importance", ty: PropType::String },
    Prop { path: "sensitivity", ty: PropType::String },
    Prop { path: "iCalUId", ty: PropType::String },
    Prop { path: "createdDateTime", ty: PropType::DateTime },
    Prop { path: "lastModifiedDateTime", ty: PropType::DateTime },
];

const EVENT_ORDERBY: &[&str] = &[
    "subject",
    "start/dateTime",
    "end/dateTime",
    "createdDateTime",
    "lastModifiedDateTime",
    "location/displayName",
    "organizer/emailAddress/name",
    "organizer/emailAddress/address",
    "isOnlineMeeting",
    "importance",
    "showAs",
];

/// `/events`: paged with `$skip`, as Graph does.
pub const EVENT_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.event",
    select: EVENT_SELECT,
    filter: EVENT_FILTER,
    orderby: EVENT_ORDERBY,
    default_top: 10,
    max_top: 999,
    skiptoken_paging: false,
};

/// `/calendarView`: paged with `$skiptoken`, as Graph does.
pub const CALENDAR_VIEW_SPEC: ResourceSpec = ResourceSpec { skiptoken_paging: true, ..EVENT_SPEC };

/// Properties `Calendars.ReadBasic` does not reach; Graph leaves them out.
const NOT_BASIC: &[&str] = &["body", "bodyPreview", "attendees", "onlineMeeting", "onlineMeetingUrl"];

// ---------------------------------------------------------------------------------------------
// Permissions

/// What a token may do with calendars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CalendarAccess {
    Basic,
    Read,
    ReadWrite,
}

impl CalendarAccess {
    pub fn of(caller: &Caller) -> Option<CalendarAccess> {
        use accord_core::microsoft_graph::permissions as graph;
        let (rw, read, basic) = if caller.is_app() {
            (graph::CALENDAR_WRITE_APP, graph::CALENDAR_FULL_READ_APP, graph::CALENDAR_BASIC_APP)
        } else {
            (graph::CALENDAR_WRITE, graph::CALENDAR_FULL_READ, graph::CALENDAR_BASIC)
        };
        if caller.first_of(rw).is_some() {
            Some(CalendarAccess::ReadWrite)
        } else if caller.first_of(read).is_some() {
            Some(CalendarAccess::Read)
        } else if caller.first_of(basic).is_some() {
            Some(CalendarAccess::Basic)
        } else {
            None
        }
    }
}

fn denied(needed: &str, caller: &Caller) -> GraphError {
    let kind = if caller.is_app() { "application" } else { "delegated" };
    GraphError::access_denied(format!(
        "Access is denied. Check credentials and try again. This operation requires the {kind} permission {needed}, which the access token does not carry."
    ))
}

fn require_read(caller: &Caller) -> Result<CalendarAccess, GraphError> {
    CalendarAccess::of(caller).ok_or_else(|| {
        let needed = if caller.is_app() {
            "Calendars.Read (or Calendars.ReadWrite)"
        } else {
            "Calendars.ReadBasic, Calendars.Read or Calendars.ReadWrite"
        };
        denied(needed, caller)
    })
}

fn require_write(caller: &Caller) -> Result<(), GraphError> {
    match CalendarAccess::of(caller) {
        Some(CalendarAccess::ReadWrite) => Ok(()),
        _ => Err(denied("Calendars.ReadWrite", caller)),
    }
}

/// Whose mailbox a request is about.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Me,
    User(String),
}

impl Target {
    fn from_path(p: &GraphPath) -> Target {
        match p.0.get("user") {
            Some(u) => Target::User(u.clone()),
            None => Target::Me,
        }
    }
}

/// Which collection a list request named (for `@odata.context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Events,
    CalendarEvents,
    CalendarView,
    CalendarCalendarView,
}

impl Collection {
    fn segment(self) -> &'static str {
        match self {
            Collection::Events => "events",
            Collection::CalendarEvents => "calendar/events",
            Collection::CalendarView => "calendarView",
            Collection::CalendarCalendarView => "calendar/calendarView",
        }
    }

    fn is_view(self) -> bool {
        matches!(self, Collection::CalendarView | Collection::CalendarCalendarView)
    }
}

/// The zone named by `Prefer: outlook.timezone`, and the `Preference-Applied` header when it is
/// honoured. Unknown zones fall back to UTC without `Preference-Applied`.
fn response_zone(headers: &HeaderMap) -> (NamedZone, Option<(HeaderName, HeaderValue)>) {
    let Some(zone) = preferred_timezone(headers).and_then(|name| NamedZone::resolve(&name)) else {
        return (NamedZone::utc(), None);
    };
    let applied = format!("outlook.timezone=\"{}\"", zone.name.replace('\\', "\\\\").replace('"', "\\\""));
    let header = HeaderValue::from_str(&applied).ok().map(|v| (HeaderName::from_static("preference-applied"), v));
    (zone, header)
}

/// The mailbox owner for a calendar request, after the permission check: the signed-in user for
/// `/me`; a user of the caller's tenant otherwise, which delegated callers may reach only when it
/// is themselves.
pub(crate) async fn mailbox(state: &AppState, caller: &Caller, target: &Target) -> Result<User, GraphError> {
    match target {
        Target::Me => {
            let Some(me) = caller.user_id() else {
                return Err(GraphError::bad_request("/me request is only valid with delegated authentication flow."));
            };
            state.store.user(caller.tenant_id, me).await?.ok_or_else(|| invalid_user(&me.to_string()))
        }
        Target::User(key) => {
            let user = find_user(state, caller.tenant_id, key).await?.ok_or_else(|| invalid_user(key))?;
            match caller.user_id() {
                Some(me) if me != user.id => Err(GraphError::access_denied(
                    "Access is denied. Check credentials and try again. Delegated permissions reach only the signed-in user's own calendar; another user's calendar needs the application permission Calendars.Read or Calendars.ReadWrite.",
                )),
                _ => Ok(user),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading events

/// `[startDateTime, endDateTime)` of a calendar view, both required.
fn view_window(query: Option<&str>) -> Result<(OffsetDateTime, OffsetDateTime), GraphError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| -> Result<OffsetDateTime, GraphError> {
        let Some((_, raw)) = pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) else {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                format!("This request requires a time window specified by the query string parameters startDateTime and endDateTime; '{name}' is missing."),
            ));
        };
        odata::parse_datetime(raw).ok_or_else(|| {
            GraphError::new(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                format!("The value '{raw}' of the query parameter '{name}' is not a valid ISO 8601 date-time."),
            )
        })
    };
    let (from, to) = (get("startDateTime")?, get("endDateTime")?);
    if to <= from {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "The query parameter 'endDateTime' must be later than 'startDateTime'.",
        ));
    }
    Ok((from, to))
}

fn entity_set(user: &User, segment: &str) -> String {
    format!("users('{}')/{segment}", user.id)
}

/// `GET …/events`, `…/calendar/events`, `…/calendarView`, `…/calendar/calendarView`
pub async fn list_events(
    state: &AppState,
    caller: &Caller,
    path: &GraphPath,
    collection: Collection,
    headers: &HeaderMap,
    query: Option<&str>,
    request_path: &str,
) -> Result<Response, GraphError> {
    let access = require_read(caller)?;
    let spec = if collection.is_view() { &CALENDAR_VIEW_SPEC } else { &EVENT_SPEC };
    let opts = QueryOptions::parse(query, spec)?;
    let window = if collection.is_view() { Some(view_window(query)?) } else { None };
    let owner = mailbox(state, caller, &Target::from_path(path)).await?;
    let (from, to) = (window.map(|w| w.0), window.map(|w| w.1));
    let events = state.store.events_of(caller.tenant_id, owner.id, from, to).await?;
    let names = if access >= CalendarAccess::Read {
        attendee_names(state, caller.tenant_id, &events).await?
    } else {
        HashMap::new()
    };
    let items: Vec<Value> = events.iter().map(|ev| event_json(state, ev, &owner, access, &names)).collect();
    let page = opts.apply(items);
    let (zone, applied) = response_zone(headers);
    let value: Vec<Value> = page.items.iter().map(|v| opts.project(in_zone(v.clone(), &zone))).collect();
    let public_url = &state.settings.public_url;
    let context = opts.context(public_url, &entity_set(&owner, collection.segment()));
    let body = opts.collection(context, &page, value, public_url, request_path);
    Ok(json_response(StatusCode::OK, body, applied))
}

fn event_id(path: &GraphPath) -> Result<Uuid, GraphError> {
    let raw = path.0.get("id").map(String::as_str).unwrap_or_default();
    Uuid::parse_str(raw)
        .map_err(|_| GraphError::new(StatusCode::BAD_REQUEST, "ErrorInvalidIdMalformed", "Id is malformed."))
}

/// The event `id` of `owner`'s calendar; another user's or tenant's event is not found.
async fn owned_event(state: &AppState, owner: &User, id: Uuid) -> Result<CalendarEvent, GraphError> {
    match state.store.event(owner.tenant_id, id).await? {
        Some(ev) if ev.owner_id == owner.id => Ok(ev),
        _ => Err(GraphError::item_not_found()),
    }
}

async fn single_event_response(
    state: &AppState,
    ev: &CalendarEvent,
    owner: &User,
    access: CalendarAccess,
    headers: &HeaderMap,
    opts: &QueryOptions,
    status: StatusCode,
) -> Result<Response, GraphError> {
    let names = if access >= CalendarAccess::Read {
        attendee_names(state, owner.tenant_id, std::slice::from_ref(ev)).await?
    } else {
        HashMap::new()
    };
    let (zone, applied) = response_zone(headers);
    let mut body = opts.project(in_zone(event_json(state, ev, owner, access, &names), &zone));
    if let Value::Object(m) = &mut body {
        let context = opts.context(&state.settings.public_url, &entity_set(owner, "events"));
        m.insert("@odata.context".into(), json!(format!("{context}/$entity")));
    }
    Ok(json_response(status, body, applied))
}

/// `GET …/events/{id}`
pub async fn get_event(
    state: &AppState,
    caller: &Caller,
    path: &GraphPath,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, GraphError> {
    let access = require_read(caller)?;
    let opts = QueryOptions::parse(query, &EVENT_SPEC)?;
    let id = event_id(path)?;
    let owner = mailbox(state, caller, &Target::from_path(path)).await?;
    let ev = owned_event(state, &owner, id).await?;
    single_event_response(state, &ev, &owner, access, headers, &opts, StatusCode::OK).await
}

// ---------------------------------------------------------------------------------------------
// Writing events
fn now_micros() -> OffsetDateTime {
    let now = accord_core::clock::now();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
}

fn join_url(state: &AppState, id: Uuid) -> String {
    format!("{}/meet/{}", state.settings.public_url, id.simple())
}

/// `POST …/events` (and `…/calendar/events`)
pub async fn create_event(
    state: &AppState,
    caller: &Caller,
    path: &GraphPath,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require_write(caller)?;
    let owner = mailbox(state, caller, &Target::from_path(path)).await?;
    let input = parse_event_input(body)?;
    let start = input.start.ok_or_else(|| field_error("Property 'start' is required.".into()))?;
    let end = input.end.ok_or_else(|| field_error("Property 'end' is required.".into()))?;
    check_times(start, end)?;
    let id = Uuid::new_v4();
    let now = now_micros();
    let ev = CalendarEvent {
        tenant_id: owner.tenant_id,
        id,
        owner_id: owner.id,
        subject: input.subject.unwrap_or_default(),
        body: input.body.unwrap_or_default(),
        location: input.location.unwrap_or_default(),
        start,
        end,
        attendees: input.attendees.unwrap_or_default(),
        online_meeting_url: input.online.unwrap_or(false).then(|| join_url(state, id)),
        created_at: now,
        modified_at: now,
    };
    calendar_sync::save_event(state, &ev, EventChange::Created).await?;
    tracing::info!(tenant = %owner.tenant_id, owner = %owner.id, event = %id, "graph: event created");
    let opts = QueryOptions::parse(None, &EVENT_SPEC)?;
    single_event_response(state, &ev, &owner, CalendarAccess::ReadWrite, headers, &opts, StatusCode::CREATED).await
}

/// `PATCH …/events/{id}`
pub async fn update_event(
    state: &AppState,
    caller: &Caller,
    path: &GraphPath,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require_write(caller)?;
    let id = event_id(path)?;
    let owner = mailbox(state, caller, &Target::from_path(path)).await?;
    let mut ev = owned_event(state, &owner, id).await?;
    let input = parse_event_input(body)?;
    if let Some(s) = input.subject {
        ev.subject = s;
    }
    if let Some(b) = input.body {
        ev.body = b;
    }
    if let Some(l) = input.location {
        ev.location = l;
    }
    if let Some(a) = input.attendees {
        ev.attendees = a;
    }
    if let Some(s) = input.start {
        ev.start = s;
    }
    if let Some(e) = input.end {
        ev.end = e;
    }
    match input.online {
        Some(true) if ev.online_meeting_url.is_none() => ev.online_meeting_url = Some(join_url(state, ev.id)),
        Some(false) => ev.online_meeting_url = None,
        _ => {}
    }
    check_times(ev.start, ev.end)?;
    ev.modified_at = now_micros().max(ev.modified_at);
    calendar_sync::save_event(state, &ev, EventChange::Updated).await?;
    tracing::info!(tenant = %owner.tenant_id, owner = %owner.id, event = %id, "graph: event updated");
    let opts = QueryOptions::parse(None, &EVENT_SPEC)?;
    single_event_response(state, &ev, &owner, CalendarAccess::ReadWrite, headers, &opts, StatusCode::OK).await
}

/// `DELETE …/events/{id}`
pub async fn delete_event(state: &AppState, caller: &Caller, path: &GraphPath) -> Result<Response, GraphError> {
    require_write(caller)?;
    let id = event_id(path)?;
    let owner = mailbox(state, caller, &Target::from_path(path)).await?;
    let ev = owned_event(state, &owner, id).await?;
    calendar_sync::save_event(state, &ev, EventChange::Deleted).await?;
    tracing::info!(tenant = %owner.tenant_id, owner = %owner.id, event = %id, "graph: event deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Handlers (thin: extract, then call the functions above)

pub async fn list(
    collection: Collection,
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    list_events(&state, &caller, &path, collection, &headers, uri.query(), uri.path()).await
}

pub async fn get_one(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, GraphError> {
    get_event(&state, &caller, &path, &headers, query.as_deref()).await
}

pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    create_event(&state, &caller, &path, &headers, body).await
}

pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    update_event(&state, &caller, &path, &headers, body).await
}

pub async fn delete(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    delete_event(&state, &caller, &path).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::auth::Principal;
    use accord_core::ids::{TenantId, UserId};

    fn delegated(scopes: &[&str]) -> Caller {
        Caller {
            tenant_id: TenantId::NIL,
            client_app_id: None,
            principal: Principal::Delegated {
                user_id: UserId::NIL,
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            },
            slot: None,
        }
    }

    fn app(roles: &[&str]) -> Caller {
        Caller {
            tenant_id: TenantId::NIL,
            client_app_id: None,
            principal: Principal::App { roles: roles.iter().map(|s| s.to_string()).collect() },
            slot: None,
        }
    }

    #[test]
    fn permission_levels() {
        assert_eq!(CalendarAccess::of(&delegated(&["User.Read"])), None);
        assert_eq!(CalendarAccess::of(&delegated(&["Calendars.ReadBasic"])), Some(CalendarAccess::Basic));
        assert_eq!(
            CalendarAccess::of(&delegated(&["Calendars.ReadBasic", "Calendars.Read"])),
            Some(CalendarAccess::Read)
        );
        assert_eq!(CalendarAccess::of(&delegated(&["calendars.readwrite"])), Some(CalendarAccess::ReadWrite));
        assert_eq!(CalendarAccess::of(&app(&["Calendars.Read"])), Some(CalendarAccess::Read));
        assert_eq!(CalendarAccess::of(&app(&["Calendars.ReadWrite"])), Some(CalendarAccess::ReadWrite));
        // A delegated scope name in an app token's roles is not the app permission.
        assert_eq!(CalendarAccess::of(&app(&["Calendars.ReadBasic"])), None);
        assert!(require_write(&delegated(&["Calendars.Read"])).unwrap_err().message.contains("Calendars.ReadWrite"));
        let e = require_read(&app(&["User.Read.All"])).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.as_ref()), (403, "ErrorAccessDenied"));
        assert!(e.message.contains("application permission Calendars.Read"));
    }

    #[test]
    fn previews_and_bodies() {
        assert_eq!(
            body_preview("<html><body><p>Agenda:</p>\n<ul><li>one &amp; two</li></ul></body></html>"),
            "Agenda: one & two"
        );
        assert_eq!(body_preview(&"x".repeat(300)).len(), 255);
        assert!(looks_like_html("<p>x</p>") && !looks_like_html("plain < text"));
    }

    #[test]
    fn event_input_validation() {
        let parse = |s: &str| parse_event_input(Ok(Bytes::from(s.to_string())));
        let e = parse(r#"{"start": {"dateTime": "2026-12-01T09:00:00"}}"#).unwrap_err();
        assert!(e.message.contains("'start.timeZone' is required"), "{}", e.message);
        let e = parse(r#"{"start": {"dateTime": "tomorrow", "timeZone": "UTC"}}"#).unwrap_err();
        assert!(e.message.contains("'start.dateTime'"));
        let e = parse(r#"{"start": {"dateTime": "2026-12-01T09:00:00", "timeZone": "Mars"}}"#).unwrap_err();
        assert!(e.message.contains("unknown time zone 'Mars'"));
        let e = parse(r#"{"attendees": [{"emailAddress": {"address": "not an address"}}]}"#).unwrap_err();
        assert!(e.message.contains("attendees[0].emailAddress.address"));
        let e = parse(r#"{"colour": "red"}"#).unwrap_err();
        assert_eq!(e.code, "RequestBodyRead");
        assert!(e.message.contains("'colour'"));
        let e = parse(r#"{"subject": 5}"#).unwrap_err();
        assert!(e.message.contains("'subject' must be a string"));
        assert_eq!(parse("[1]").unwrap_err().code, "UnableToDeserializePostBody");
        assert_eq!(parse("{").unwrap_err().code, "UnableToDeserializePostBody");
        assert_eq!(parse("").unwrap_err().status, StatusCode::BAD_REQUEST);

        let ok = parse(
            r##"{"subject": "Plan", "start": {"dateTime": "2026-07-01T09:00:00", "timeZone": "Pacific Standard Time"},
                "end": {"dateTime": "2026-07-01T17:00:00Z", "timeZone": "Pacific Standard Time"},
                "attendees": [{"type": "required", "emailAddress": {"address": "a@b.test", "name": "A"}},
                              {"emailAddress": {"address": "A@b.test"}}],
                "importance": "high", "@odata.type": "#microsoft.graph.event"}"##,
        )
        .unwrap();
        assert_eq!(ok.start, Some(time::macros::datetime!(2026-07-01 16:00 UTC)), "PDT is UTC-7 in July");
        assert_eq!(ok.end, Some(time::macros::datetime!(2026-07-01 17:00 UTC)), "an explicit offset wins");
        assert_eq!(ok.attendees, Some(vec!["a@b.test".to_string()]));
    }
}
