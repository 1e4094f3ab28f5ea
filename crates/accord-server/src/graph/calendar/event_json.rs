//! Events as Graph JSON: properties, the time zone asked for, attendees' names.

use crate::graph::errors::GraphError;
use crate::graph::odata::{self};
use crate::graph::timezone::NamedZone;
use crate::state::AppState;
use accord_core::directory::{CalendarEvent, User};
use accord_core::ids::TenantId;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

use super::*;

/// Display names of attendees who are users of the tenant (by address, lower case).
pub(super) async fn attendee_names(
    state: &AppState,
    tenant_id: TenantId,
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

pub(super) fn looks_like_html(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with('<') && t.contains('>')
}

/// Text of the body without tags, whitespace collapsed, at most 255 characters.
pub(super) fn body_preview(body: &str) -> String {
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

pub(super) fn etag(ev: &CalendarEvent) -> String {
    crate::service::calendar_sync::change_key(ev)
}

pub(super) fn email(name: &str, address: &str) -> Value {
    json!({"emailAddress": {"name": name, "address": address}})
}

/// An event as Graph shows it, in UTC, trimmed to what `access` may see.
pub(super) fn event_json(
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
pub(super) fn in_zone(mut v: Value, zone: &NamedZone) -> Value {
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
