//! Users and Office 365 calendars: `/v1.0/me`, `/v1.0/users/{id|upn}`, events, calendar events
//! and calendar views, read and written with exactly the permissions the token carries.
//!
//! Permission matrix (docs/graph-api.md):
//! * delegated `Calendars.ReadBasic`: read the signed-in user's events without body,
//!   bodyPreview, attendees and onlineMeeting; `Calendars.Read`: read them whole;
//!   `Calendars.ReadWrite`: also create, update, delete. Only the signed-in user's own calendar.
//! * application `Calendars.Read` / `Calendars.ReadWrite`: any user of the token's tenant.
//! * users of other tenants do not exist for the caller (404).

use super::auth::Caller;
use super::errors::GraphError;
use super::odata::{self, parse_datetime_parts, Prop, PropType, QueryOptions, ResourceSpec};
use super::permissions::{ME as USER_SELF, USER_READ_ANY as USER_OTHERS_DELEGATED, USER_READ_APP as USER_OTHERS_APP};
use super::request::{denied as directory_denied, json_response, GraphPath};
use super::timezone::{preferred_timezone, NamedZone};
use crate::state::{AppState, SharedState};
use accord_core::directory::{CalendarEvent, User};
use accord_store::Change;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Resource descriptions

pub(super) const USER_SELECT: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

const USER_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.user",
    select: USER_SELECT,
    filter: &[],
    orderby: &[],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

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

const DELEGATED_RW: &[&str] = &["Calendars.ReadWrite", "Calendars.ReadWrite.Shared"];
const DELEGATED_READ: &[&str] = &["Calendars.Read", "Calendars.Read.Shared"];
const DELEGATED_BASIC: &[&str] = &["Calendars.ReadBasic"];
const APP_RW: &[&str] = &["Calendars.ReadWrite"];
const APP_READ: &[&str] = &["Calendars.Read"];
const APP_BASIC: &[&str] = &["Calendars.ReadBasic.All"];

impl CalendarAccess {
    pub fn of(caller: &Caller) -> Option<CalendarAccess> {
        let (rw, read, basic) = if caller.is_app() {
            (APP_RW, APP_READ, APP_BASIC)
        } else {
            (DELEGATED_RW, DELEGATED_READ, DELEGATED_BASIC)
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
enum Target {
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

/// The tenant's user named by object id or UPN (one indexed read, no scan).
pub(super) async fn find_user(state: &AppState, tenant_id: Uuid, key: &str) -> Result<Option<User>, GraphError> {
    Ok(match Uuid::parse_str(key) {
        Ok(id) => state.store.user(tenant_id, id).await?,
        Err(_) => state.store.user_by_upn(tenant_id, key).await?,
    })
}

fn invalid_user(key: &str) -> GraphError {
    GraphError::new(StatusCode::NOT_FOUND, "ErrorInvalidUser", format!("The requested user '{key}' is invalid."))
}

/// The mailbox owner for a calendar request, after the permission check: the signed-in user for
/// `/me`; a user of the caller's tenant otherwise, which delegated callers may reach only when it
/// is themselves.
async fn mailbox(state: &AppState, caller: &Caller, target: &Target) -> Result<User, GraphError> {
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
// Users

fn split_name(display_name: &str) -> (Value, Value) {
    match display_name.trim().split_once(' ') {
        Some((given, family)) => (json!(given), json!(family.trim())),
        None => (json!(display_name), Value::Null),
    }
}

pub(super) fn user_json(user: &User) -> Value {
    let (given, surname) = split_name(&user.display_name);
    json!({
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given,
        "jobTitle": null,
        "mail": user.upn,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": null,
        "surname": surname,
        "userPrincipalName": user.upn,
    })
}

fn user_response(state: &AppState, user: &User, query: Option<&str>) -> Result<Response, GraphError> {
    let opts = QueryOptions::parse(query, &USER_SPEC)?;
    let mut body = opts.project(user_json(user));
    if let Value::Object(m) = &mut body {
        m.insert(
            "@odata.context".into(),
            json!(format!("{}/$entity", opts.context(&state.settings.public_url, "users"))),
        );
    }
    Ok(json_response(StatusCode::OK, body, None))
}

/// `GET /v1.0/me`
pub async fn me(
    State(state): State<SharedState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, GraphError> {
    let Some(me) = caller.user_id() else {
        return Err(GraphError::bad_request("/me request is only valid with delegated authentication flow."));
    };
    if caller.first_of(USER_SELF).is_none() {
        return Err(directory_denied("User.Read", &caller));
    }
    let user =
        state.store.user(caller.tenant_id, me).await?.ok_or_else(|| GraphError::resource_not_found(&me.to_string()))?;
    user_response(&state, &user, query.as_deref())
}

/// `GET /v1.0/users/{id|upn}`
pub async fn user(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    RawQuery(query): RawQuery,
) -> Result<Response, GraphError> {
    let key = path.0.get("user").cloned().unwrap_or_default();
    let others = if caller.is_app() { USER_OTHERS_APP } else { USER_OTHERS_DELEGATED };
    let self_ok = !caller.is_app() && caller.first_of(USER_SELF).is_some();
    if !self_ok && caller.first_of(others).is_none() {
        return Err(directory_denied(
            if caller.is_app() { "User.Read.All" } else { "User.ReadBasic.All or User.Read.All" },
            &caller,
        ));
    }
    let user = find_user(&state, caller.tenant_id, &key).await?.ok_or_else(|| GraphError::resource_not_found(&key))?;
    if caller.user_id() != Some(user.id) && caller.first_of(others).is_none() {
        return Err(directory_denied(
            if caller.is_app() { "User.Read.All" } else { "User.ReadBasic.All or User.Read.All" },
            &caller,
        ));
    }
    user_response(&state, &user, query.as_deref())
}

// ---------------------------------------------------------------------------------------------
// Events as JSON

/// Display names of attendees who are users of the tenant (by address, lower case).
async fn attendee_names(
    state: &AppState,
    tenant_id: Uuid,
    events: &[CalendarEvent],
) -> Result<HashMap<String, String>, GraphError> {
    let mut names = HashMap::new();
    let Some(tenant) = state.store.tenant(tenant_id).await? else { return Ok(names) };
    let mut wanted: HashSet<String> = HashSet::new();
    for ev in events {
        for a in &ev.attendees {
            let a = a.to_ascii_lowercase();
            let in_tenant = a.rsplit_once('@').is_some_and(|(_, d)| tenant.domains.iter().any(|t| t == d));
            if in_tenant && wanted.len() < 200 {
                wanted.insert(a);
            }
        }
    }
    for address in wanted {
        if let Some(u) = state.store.user_by_upn(tenant_id, &address).await? {
            names.insert(address, u.display_name);
        }
    }
    Ok(names)
}

fn looks_like_html(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with('<') && t.contains('>')
}

/// Text of the body without tags, whitespace collapsed, at most 255 characters.
fn body_preview(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(255).collect()
}

fn date_time_time_zone(t: OffsetDateTime, zone: &NamedZone) -> Value {
    json!({"dateTime": odata::format_wall_clock(zone.wall_clock(t)), "timeZone": zone.name})
}

fn etag(ev: &CalendarEvent) -> String {
    let micros = (ev.modified_at.unix_timestamp_nanos() / 1000) as i64;
    B64.encode(micros.to_be_bytes())
}

fn email(name: &str, address: &str) -> Value {
    json!({"emailAddress": {"name": name, "address": address}})
}

/// An event as Graph shows it, in UTC, trimmed to what `access` may see.
fn event_json(
    state: &AppState,
    ev: &CalendarEvent,
    owner: &User,
    access: CalendarAccess,
    names: &HashMap<String, String>,
) -> Value {
    let utc = NamedZone::utc();
    let change_key = etag(ev);
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("@odata.etag", json!(format!("W/\"{change_key}\"")));
    put("id", json!(ev.id));
    put("createdDateTime", json!(odata::format_utc(ev.created_at)));
    put("lastModifiedDateTime", json!(odata::format_utc(ev.modified_at)));
    put("changeKey", json!(change_key));
    put("categories", json!([]));
    put("transactionId", Value::Null);
    put("originalStartTimeZone", json!("UTC"));
    put("originalEndTimeZone", json!("UTC"));
    put("iCalUId", json!(format!("040000008200E00074C5B7101A82E00800000000{}", ev.id.simple()).to_uppercase()));
    put("reminderMinutesBeforeStart", json!(15));
    put("isReminderOn", json!(true));
    put("hasAttachments", json!(false));
    put("subject", json!(ev.subject));
    put("bodyPreview", json!(body_preview(&ev.body)));
    put("importance", json!("normal"));
    put("sensitivity", json!("normal"));
    put("isAllDay", json!(false));
    put("isCancelled", json!(false));
    put("isOrganizer", json!(true));
    put("responseRequested", json!(true));
    put("seriesMasterId", Value::Null);
    put("showAs", json!("busy"));
    put("type", json!("singleInstance"));
    put("webLink", json!(format!("{}/owa/?itemid={}&exvsurl=1&path=/calendar/item", state.settings.public_url, ev.id)));
    put("onlineMeetingUrl", Value::Null);
    put("isOnlineMeeting", json!(ev.online_meeting_url.is_some()));
    put("onlineMeetingProvider", json!(if ev.online_meeting_url.is_some() { "teamsForBusiness" } else { "unknown" }));
    put("allowNewTimeProposals", json!(true));
    put("isDraft", json!(false));
    put("hideAttendees", json!(false));
    put("responseStatus", json!({"response": "organizer", "time": "0001-01-01T00:00:00Z"}));
    put("body", json!({"contentType": if looks_like_html(&ev.body) { "html" } else { "text" }, "content": ev.body}));
    put("start", date_time_time_zone(ev.start, &utc));
    put("end", date_time_time_zone(ev.end, &utc));
    let location = json!({
        "displayName": ev.location,
        "locationType": "default",
        "uniqueIdType": if ev.location.is_empty() { "unknown" } else { "private" },
        "address": {},
        "coordinates": {},
    });
    put("locations", if ev.location.is_empty() { json!([]) } else { json!([location.clone()]) });
    put("location", location);
    put("recurrence", Value::Null);
    let attendees: Vec<Value> = ev
        .attendees
        .iter()
        .map(|a| {
            let name = names.get(&a.to_ascii_lowercase()).cloned().unwrap_or_else(|| a.clone());
            json!({
                "type": "required",
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": name, "address": a},
            })
        })
        .collect();
    put("attendees", json!(attendees));
    put("organizer", email(&owner.display_name, &owner.upn));
    put("onlineMeeting", ev.online_meeting_url.as_ref().map(|u| json!({"joinUrl": u})).unwrap_or(Value::Null));
    if access == CalendarAccess::Basic {
        for k in NOT_BASIC {
            m.remove(*k);
        }
    }
    Value::Object(m)
}

/// Re-expresses `start`/`end` of a UTC event object in `zone`.
fn in_zone(mut v: Value, zone: &NamedZone) -> Value {
    if zone.is_utc() && zone.name == "UTC" {
        return v;
    }
    for key in ["start", "end"] {
        let t = v.get(key).and_then(|s| s.get("dateTime")).and_then(Value::as_str).and_then(odata::parse_datetime);
        if let (Some(t), Some(obj)) = (t, v.get_mut(key)) {
            *obj = date_time_time_zone(t, zone);
        }
    }
    v
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

/// Fields a create or update names; `None` = not given.
#[derive(Debug, Default)]
struct EventInput {
    subject: Option<String>,
    body: Option<String>,
    start: Option<OffsetDateTime>,
    end: Option<OffsetDateTime>,
    location: Option<String>,
    attendees: Option<Vec<String>>,
    online: Option<bool>,
}

/// Accepted and not stored (Accord keeps no such data); read-only properties are ignored too.
const IGNORED: &[&str] = &[
    "@odata.type",
    "@odata.etag",
    "allowNewTimeProposals",
    "categories",
    "changeKey",
    "createdDateTime",
    "hasAttachments",
    "hideAttendees",
    "iCalUId",
    "id",
    "importance",
    "isCancelled",
    "isDraft",
    "isOrganizer",
    "isReminderOn",
    "lastModifiedDateTime",
    "locations",
    "onlineMeeting",
    "onlineMeetingUrl",
    "organizer",
    "originalEndTimeZone",
    "originalStartTimeZone",
    "reminderMinutesBeforeStart",
    "responseRequested",
    "responseStatus",
    "sensitivity",
    "seriesMasterId",
    "showAs",
    "transactionId",
    "type",
    "webLink",
    "bodyPreview",
];

fn field_error(message: String) -> GraphError {
    GraphError::invalid_request(message)
}

fn string_field(v: &Value, name: &str, max: usize) -> Result<String, GraphError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
        Value::String(_) => Err(field_error(format!("Property '{name}' is too long: at most {max} characters."))),
        _ => Err(field_error(format!("Property '{name}' must be a string."))),
    }
}

fn object_field<'v>(v: &'v Value, name: &str) -> Result<&'v Map<String, Value>, GraphError> {
    v.as_object().ok_or_else(|| field_error(format!("Property '{name}' must be an object.")))
}

/// A `dateTimeTimeZone`: `dateTime` read in `timeZone` (Windows or IANA name), unless the text
/// carries its own offset.
fn date_time_field(v: &Value, name: &str) -> Result<OffsetDateTime, GraphError> {
    let o = object_field(v, name)?;
    for k in o.keys() {
        if k != "dateTime" && k != "timeZone" && k != "@odata.type" {
            return Err(field_error(format!(
                "Property '{name}.{k}' does not exist on type 'microsoft.graph.dateTimeTimeZone'."
            )));
        }
    }
    let raw = match o.get("dateTime") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(field_error(format!("Property '{name}.dateTime' must be a string."))),
        None => return Err(field_error(format!("Property '{name}.dateTime' is required."))),
    };
    let zone_name = match o.get("timeZone") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(field_error(format!("Property '{name}.timeZone' must be a string."))),
        None => return Err(field_error(format!("Property '{name}.timeZone' is required."))),
    };
    let zone = NamedZone::resolve(zone_name).ok_or_else(|| {
        field_error(format!(
            "Property '{name}.timeZone' names an unknown time zone '{zone_name}': use a Windows or IANA time zone name."
        ))
    })?;
    let (local, offset): (PrimitiveDateTime, Option<UtcOffset>) = parse_datetime_parts(raw).ok_or_else(|| {
        field_error(format!("Property '{name}.dateTime' is not a valid ISO 8601 date-time: '{raw}'."))
    })?;
    let t = match offset {
        Some(offset) => Some(local.assume_offset(offset)),
        None => zone.instant(local),
    };
    let t = t.ok_or_else(|| field_error(format!("Property '{name}.dateTime' is out of range: '{raw}'.")))?;
    // Stored with microsecond precision.
    Ok(t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t).to_offset(UtcOffset::UTC))
}

fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && a.len() <= 254
        && !a.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
}

fn attendees_field(v: &Value) -> Result<Vec<String>, GraphError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(field_error("Property 'attendees' must be an array.".into())),
    };
    if items.len() > 500 {
        return Err(field_error("Property 'attendees' has more than 500 entries.".into()));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = format!("attendees[{i}]");
        let o = object_field(item, &name)?;
        if let Some(t) = o.get("type") {
            let ok = t
                .as_str()
                .is_some_and(|t| ["required", "optional", "resource"].iter().any(|k| k.eq_ignore_ascii_case(t)));
            if !ok {
                return Err(field_error(format!(
                    "Property '{name}.type' must be 'required', 'optional' or 'resource'."
                )));
            }
        }
        let address = o
            .get("emailAddress")
            .and_then(Value::as_object)
            .and_then(|e| e.get("address"))
            .ok_or_else(|| field_error(format!("Property '{name}.emailAddress.address' is required.")))?;
        let address = address
            .as_str()
            .filter(|a| valid_address(a.trim()))
            .ok_or_else(|| {
                field_error(format!("Property '{name}.emailAddress.address' is not a valid email address."))
            })?
            .trim()
            .to_string();
        if !out.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
            out.push(address);
        }
    }
    Ok(out)
}

fn parse_event_input(body: Result<Bytes, BytesRejection>) -> Result<EventInput, GraphError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GraphError::payload_too_large()
        } else {
            GraphError::new(StatusCode::BAD_REQUEST, "RequestBodyRead", "The request body could not be read.")
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", "Empty Payload. JSON content expected."));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "UnableToDeserializePostBody",
            format!("Unable to read JSON request payload: {e}."),
        )
    })?;
    let Value::Object(o) = value else {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "UnableToDeserializePostBody",
            "Unable to read JSON request payload: an object was expected.",
        ));
    };
    let mut input = EventInput::default();
    for (k, v) in &o {
        match k.as_str() {
            "subject" => input.subject = Some(string_field(v, "subject", 255)?),
            "body" => {
                if v.is_null() {
                    input.body = Some(String::new());
                    continue;
                }
                let b = object_field(v, "body")?;
                if let Some(ct) = b.get("contentType") {
                    let ok = ct.as_str().is_some_and(|c| c.eq_ignore_ascii_case("text") || c.eq_ignore_ascii_case("html"));
                    if !ok {
                        return Err(field_error("Property 'body.contentType' must be 'text' or 'html'.".into()));
                    }
                }
                input.body = Some(string_field(b.get("content").unwrap_or(&Value::Null), "body.content", 32 * 1024)?);
            }
            "start" => input.start = Some(date_time_field(v, "start")?),
            "end" => input.end = Some(date_time_field(v, "end")?),
            "location" => {
                let name = match v {
                    Value::Null => String::new(),
                    v => string_field(
                        object_field(v, "location")?.get("displayName").unwrap_or(&Value::Null),
                        "location.displayName",
                        255,
                    )?,
                };
                input.location = Some(name);
            }
            "attendees" => input.attendees = Some(attendees_field(v)?),
            "isOnlineMeeting" => {
                input.online = Some(v.as_bool().ok_or_else(|| field_error("Property 'isOnlineMeeting' must be true or false.".into()))?)
            }
            "onlineMeetingProvider" => {
                let ok = v.as_str().is_some_and(|p| {
                    ["teamsForBusiness", "skypeForBusiness", "skypeForConsumer", "unknown"].iter().any(|k| k.eq_ignore_ascii_case(p))
                });
                if !ok {
                    return Err(field_error(
                        "Property 'onlineMeetingProvider' must be 'teamsForBusiness', 'skypeForBusiness', 'skypeForConsumer' or 'unknown'.".into(),
                    ));
                }
            }
            "isAllDay" => {
                if v.as_bool() != Some(false) {
                    return Err(field_error("Property 'isAllDay': all-day events are not supported; use start and end times.".into()));
                }
            }
            "recurrence" => {
                if !v.is_null() {
                    return Err(field_error("Property 'recurrence': recurring events are not supported.".into()));
                }
            }
            k if IGNORED.contains(&k) => {}
            other => {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "RequestBodyRead",
                    format!("The property '{other}' does not exist on type 'microsoft.graph.event'. Make sure to only use property names that are defined by the type."),
                ))
            }
        }
    }
    Ok(input)
}

fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
}

fn join_url(state: &AppState, id: Uuid) -> String {
    format!("{}/meet/{}", state.settings.public_url, id.simple())
}

fn check_times(start: OffsetDateTime, end: OffsetDateTime) -> Result<(), GraphError> {
    if end < start {
        return Err(field_error("Property 'end' must not be before 'start'.".into()));
    }
    Ok(())
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
    state.store.apply(&[Change::PutEvent(ev.clone())]).await?;
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
    state.store.apply(&[Change::PutEvent(ev.clone())]).await?;
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
    state.store.apply(&[Change::DeleteEvent { tenant_id: ev.tenant_id, event_id: ev.id }]).await?;
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

    fn delegated(scopes: &[&str]) -> Caller {
        Caller {
            tenant_id: Uuid::nil(),
            client_app_id: None,
            principal: Principal::Delegated {
                user_id: Uuid::nil(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    fn app(roles: &[&str]) -> Caller {
        Caller {
            tenant_id: Uuid::nil(),
            client_app_id: None,
            principal: Principal::App { roles: roles.iter().map(|s| s.to_string()).collect() },
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
