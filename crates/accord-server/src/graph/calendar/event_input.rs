//! The body of an event create or update, read field by field with Graph's messages.

use crate::graph::errors::GraphError;
use crate::graph::odata::parse_datetime_parts;
use crate::graph::timezone::NamedZone;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Fields a create or update names; `None` = not given.
#[derive(Debug, Default)]
pub(super) struct EventInput {
    pub(super) subject: Option<String>,
    pub(super) body: Option<String>,
    pub(super) start: Option<OffsetDateTime>,
    pub(super) end: Option<OffsetDateTime>,
    pub(super) location: Option<String>,
    pub(super) attendees: Option<Vec<String>>,
    pub(super) online: Option<bool>,
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

pub(super) fn field_error(message: String) -> GraphError {
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

pub(super) fn parse_event_input(body: Result<Bytes, BytesRejection>) -> Result<EventInput, GraphError> {
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

pub(super) fn check_times(start: OffsetDateTime, end: OffsetDateTime) -> Result<(), GraphError> {
    if end < start {
        return Err(field_error("Property 'end' must not be before 'start'.".into()));
    }
    Ok(())
}
