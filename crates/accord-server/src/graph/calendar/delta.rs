//! `GET …/calendarView/delta`: a calendar view synchronised in rounds, as Graph does it.
//!
//! A round starts from the window (`startDateTime`/`endDateTime`) or from the previous round's
//! `$deltatoken`, and pages through `@odata.nextLink` (`$skiptoken`) to an `@odata.deltaLink`.
//! The first round lists the window's events; later rounds list what the calendar's change
//! journal (accord-store) numbers after the previous round's end: changed events in full,
//! deleted ones and ones that left the window as `@removed`. Each round ends at the journal
//! number read when it began, so changes made meanwhile come in the next round (an event may
//! come twice; Graph allows replays, never gaps).
//!
//! Tokens are the round's state sealed with the server key (opaque, tamper-proof, valid across
//! restarts and replicas), bound to the tenant, the mailbox, the window and the caller (client
//! app and signed-in user). One that does not open, belongs to someone else, or is older than
//! the journal's retention answers `410 SyncStateNotFound`, which tells a client to start over.

use super::*;
use accord_core::ids::UserId;
use serde::{Deserialize, Serialize};

const PURPOSE: &str = "graph/calendar-delta/v1";
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// A round's state, as sealed into `$skiptoken` / `$deltatoken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SyncState {
    /// Tenant, mailbox, client app and signed-in user the token belongs to.
    t: Uuid,
    m: Uuid,
    a: Option<Uuid>,
    u: Option<Uuid>,
    /// The window, unix microseconds.
    s: i64,
    e: i64,
    /// Journal number the round continues after (`None`: the first round, listing the window).
    since: Option<i64>,
    /// Journal number the round ends at; `None` in a delta token (the next round has not begun).
    until: Option<i64>,
    /// First round: the last event id listed so far.
    after: Option<Uuid>,
    /// When the token was issued (unix seconds): older than the retention is gone.
    at: i64,
}

/// Whose sync a request is: what a token must match.
struct Binding {
    tenant: Uuid,
    mailbox: Uuid,
    app: Option<Uuid>,
    user: Option<Uuid>,
}

fn gone() -> GraphError {
    GraphError::new(
        StatusCode::GONE,
        "SyncStateNotFound",
        "The sync state is not found: the delta or skip token is unknown, expired, or belongs to another caller, mailbox or window. Start a new round with startDateTime and endDateTime.",
    )
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

fn from_micros(m: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1_000).ok()
}

/// The request's parameters: the window or a token, and `$select`.
struct DeltaQuery {
    window: Option<(OffsetDateTime, OffsetDateTime)>,
    token: Option<(bool, String)>,
    select: Option<String>,
}

fn parse_query(query: Option<&str>) -> Result<DeltaQuery, GraphError> {
    let mut q = DeltaQuery { window: None, token: None, select: None };
    let mut has_window = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let name = key.to_ascii_lowercase();
        match name.as_str() {
            "$skiptoken" | "$deltatoken" => {
                if q.token.is_some() {
                    return Err(GraphError::bad_request("Only one of '$skiptoken' and '$deltatoken' may be given."));
                }
                q.token = Some((name == "$deltatoken", value.into_owned()));
            }
            "$select" => q.select = Some(value.into_owned()),
            "startdatetime" | "enddatetime" => has_window = true,
            other if other.starts_with('$') => {
                return Err(GraphError::bad_request(format!(
                    "Query option '{other}' is not supported with delta; only '$select' is."
                )))
            }
            _ => {}
        }
    }
    if q.token.is_none() || has_window {
        q.window = Some(view_window(query)?);
    }
    Ok(q)
}

/// `Prefer: odata.maxpagesize=n`, within `1..=MAX_PAGE`.
fn page_size(headers: &HeaderMap) -> (u32, bool) {
    match super::super::timezone::preference(headers, "odata.maxpagesize").and_then(|v| v.trim().parse::<u32>().ok()) {
        Some(n) if n > 0 => (n.min(MAX_PAGE), true),
        _ => (DEFAULT_PAGE, false),
    }
}

fn open_token(state: &AppState, token: &str, is_delta: bool, who: &Binding) -> Result<SyncState, GraphError> {
    let plain = state.keyring.open_text(PURPOSE, token).ok_or_else(gone)?;
    let st: SyncState = serde_json::from_slice(&plain).map_err(|_| gone())?;
    let bound = st.t == who.tenant && st.m == who.mailbox && st.a == who.app && st.u == who.user;
    let kind_ok = is_delta == st.until.is_none() && (is_delta || st.since.is_some() || st.after.is_some());
    let age = accord_core::clock::now().unix_timestamp() - st.at;
    let fresh = age <= accord_store::CALENDAR_CHANGE_RETENTION_DAYS * 86_400;
    if !(bound && kind_ok && fresh) {
        return Err(gone());
    }
    Ok(st)
}

fn seal(state: &AppState, st: &SyncState) -> String {
    let json = serde_json::to_vec(st).expect("sync state serialises");
    state.keyring.seal_text(PURPOSE, &json)
}

/// `GET …/calendarView/delta` (and `…/calendar/calendarView/delta`).
pub async fn calendar_delta(
    state: &AppState,
    caller: &Caller,
    path: &GraphPath,
    headers: &HeaderMap,
    query: Option<&str>,
    request_path: &str,
) -> Result<Response, GraphError> {
    let access = require_read(caller)?;
    let q = parse_query(query)?;
    let opts = match &q.select {
        Some(sel) => {
            let encoded: String = form_urlencoded::Serializer::new(String::new()).append_pair("$select", sel).finish();
            QueryOptions::parse(Some(&encoded), &CALENDAR_VIEW_SPEC)?
        }
        None => QueryOptions::parse(None, &CALENDAR_VIEW_SPEC)?,
    };
    let owner = mailbox(state, caller, &Target::from_path(path)).await?;
    let who = Binding {
        tenant: caller.tenant_id.into(),
        mailbox: owner.id.into(),
        app: caller.client_app_id.map(Uuid::from),
        user: caller.user_id().map(Uuid::from),
    };
    let now = accord_core::clock::now();
    let mut st = match &q.token {
        Some((is_delta, token)) => open_token(state, token, *is_delta, &who)?,
        None => {
            let (from, to) = q.window.expect("a request without a token has a window");
            SyncState {
                t: who.tenant,
                m: who.mailbox,
                a: who.app,
                u: who.user,
                s: micros(from),
                e: micros(to),
                since: None,
                until: None,
                after: None,
                at: now.unix_timestamp(),
            }
        }
    };
    if let (Some((from, to)), Some(_)) = (q.window, &q.token) {
        if (micros(from), micros(to)) != (st.s, st.e) {
            return Err(gone());
        }
    }
    let window = (from_micros(st.s).ok_or_else(gone)?, from_micros(st.e).ok_or_else(gone)?);
    let (size, size_asked) = page_size(headers);
    let owner_id = UserId::from(who.mailbox);
    // The round's end is read before any page, so nothing committed after it is lost.
    let until = match st.until {
        Some(until) => until,
        None => state.store.calendar_watermark(caller.tenant_id, owner_id).await?,
    };
    if st.since.is_some_and(|since| since > until) {
        return Err(gone()); // the journal is behind the token: not this store's state
    }
    let (zone, zone_applied) = response_zone(headers);
    let render = |ev: &CalendarEvent, names: &HashMap<String, String>| -> Value {
        let mut v = opts.project(in_zone(event_json(state, ev, &owner, access, names), &zone));
        if let Value::Object(m) = &mut v {
            m.insert("@odata.type".into(), json!("#microsoft.graph.event"));
        }
        v
    };
    let removed = |id: Uuid| json!({"@odata.type": "#microsoft.graph.event", "id": id.to_string(), "@removed": {"reason": "deleted"}});
    let (value, more): (Vec<Value>, bool) = match st.since {
        None => {
            let mut events = state.store.events_page(caller.tenant_id, owner_id, window, st.after, size + 1).await?;
            let more = events.len() > size as usize;
            events.truncate(size as usize);
            st.after = events.last().map(|e| e.id).or(st.after);
            let names = names_for(state, access, caller, &events).await?;
            (events.iter().map(|e| render(e, &names)).collect(), more)
        }
        Some(since) => {
            let mut changes = state.store.calendar_changes(caller.tenant_id, owner_id, since, until, size + 1).await?;
            let more = changes.len() > size as usize;
            changes.truncate(size as usize);
            st.since = changes.last().map(|c| c.seq).or(st.since);
            let live: Vec<CalendarEvent> = changes.iter().filter_map(|c| c.event.clone()).collect();
            let names = names_for(state, access, caller, &live).await?;
            let in_window = |ev: &CalendarEvent| ev.start < window.1 && ev.end > window.0;
            let value = changes
                .iter()
                .map(|c| match &c.event {
                    Some(ev) if in_window(ev) => render(ev, &names),
                    _ => removed(c.event_id),
                })
                .collect();
            (value, more)
        }
    };
    let public_url = &state.settings.public_url;
    let link = if more {
        st.until = Some(until);
        if st.since.is_none() && st.after.is_none() {
            return Err(GraphError::internal("a delta page with more to come named no position"));
        }
        ("@odata.nextLink", format!("{public_url}{request_path}?$skiptoken={}", seal(state, &st)))
    } else {
        let next = SyncState { since: Some(until), until: None, after: None, at: now.unix_timestamp(), ..st };
        ("@odata.deltaLink", format!("{public_url}{request_path}?$deltatoken={}", seal(state, &next)))
    };
    let body = json!({
        "@odata.context": format!("{public_url}/v1.0/$metadata#Collection(event)"),
        link.0: link.1,
        "value": value,
    });
    let mut response = json_response(StatusCode::OK, body, zone_applied);
    if size_asked {
        let applied = response.headers().get("preference-applied").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = match applied {
            Some(zone) => format!("{zone}, odata.maxpagesize={size}"),
            None => format!("odata.maxpagesize={size}"),
        };
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().insert("preference-applied", v);
        }
    }
    Ok(response)
}

async fn names_for(
    state: &AppState,
    access: CalendarAccess,
    caller: &Caller,
    events: &[CalendarEvent],
) -> Result<HashMap<String, String>, GraphError> {
    if access >= CalendarAccess::Read {
        attendee_names(state, caller.tenant_id, events).await
    } else {
        Ok(HashMap::new())
    }
}

pub async fn delta(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    calendar_delta(&state, &caller, &path, &headers, uri.query(), uri.path()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_needs_a_window_or_a_token_and_only_select() {
        assert!(parse_query(None).is_err());
        assert!(parse_query(Some("$deltatoken=x")).unwrap().window.is_none());
        let q =
            parse_query(Some("startDateTime=2026-01-01T00:00:00Z&endDateTime=2026-02-01T00:00:00Z&$select=subject"))
                .unwrap();
        assert!(q.window.is_some() && q.select.as_deref() == Some("subject"));
        let e = parse_query(Some("$deltatoken=x&$filter=subject eq 'a'")).err().unwrap();
        assert!(e.message.contains("'$filter' is not supported with delta"), "{}", e.message);
        assert!(parse_query(Some("$deltatoken=x&$skiptoken=y")).is_err());
    }

    #[test]
    fn page_size_follows_prefer() {
        let mut h = HeaderMap::new();
        assert_eq!(page_size(&h), (DEFAULT_PAGE, false));
        h.insert("prefer", HeaderValue::from_static("odata.maxpagesize=2"));
        assert_eq!(page_size(&h), (2, true));
        h.insert("prefer", HeaderValue::from_static("odata.maxpagesize=100000"));
        assert_eq!(page_size(&h), (MAX_PAGE, true));
        h.insert("prefer", HeaderValue::from_static("odata.maxpagesize=0"));
        assert_eq!(page_size(&h), (DEFAULT_PAGE, false));
    }
}
