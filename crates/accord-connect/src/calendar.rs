//! A Microsoft Graph calendar client: events and calendar views, every page, with retries on
//! throttling (429) and server errors (5xx) that honour `Retry-After`.

use crate::config::RetryPolicy;
use crate::error::ConnectError;
use crate::http::transport;
use crate::retry::delay_for;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use url::Url;

/// Whose calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CalendarUser {
    /// `/me`: the signed-in user of a delegated token.
    Me,
    /// `/users/{id or userPrincipalName}`: any user of the tenant (application permissions), or
    /// the signed-in user.
    UserId(String),
}

/// `{dateTime, timeZone}` as Graph sends it (`2026-12-01T09:00:00.0000000`, `UTC`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    pub date_time: String,
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl DateTimeTimeZone {
    /// The instant, when the zone is UTC (the default with `Prefer: outlook.timezone="UTC"`).
    pub fn to_utc(&self) -> Option<OffsetDateTime> {
        let zone = self.time_zone.as_deref().unwrap_or("UTC");
        if !(zone.eq_ignore_ascii_case("UTC") || zone.eq_ignore_ascii_case("Etc/UTC")) {
            return None;
        }
        let text = self.date_time.trim_end_matches('Z');
        // Graph sends seven fractional digits; RFC 3339 parsing takes up to nine.
        OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339).ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    #[serde(default)]
    pub email_address: Option<EmailAddress>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    #[serde(default)]
    pub email_address: Option<EmailAddress>,
    /// `required`, `optional` or `resource`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub status: Option<ResponseStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlineMeeting {
    #[serde(default)]
    pub join_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A Graph event; fields absent from a `$select` or a `Calendars.ReadBasic` answer are `None`
/// or empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body_preview: Option<String>,
    #[serde(default)]
    pub start: Option<DateTimeTimeZone>,
    #[serde(default)]
    pub end: Option<DateTimeTimeZone>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub organizer: Option<Recipient>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub attendees: Vec<Attendee>,
    #[serde(default)]
    pub is_online_meeting: Option<bool>,
    #[serde(default)]
    pub online_meeting: Option<OnlineMeeting>,
    #[serde(default)]
    pub web_link: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
}

impl Event {
    /// `onlineMeeting.joinUrl`, when there is one.
    pub fn join_url(&self) -> Option<&str> {
        self.online_meeting.as_ref().and_then(|m| m.join_url.as_deref())
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// Reads calendars from Graph (or Accord's Graph-compatible API).
#[derive(Clone)]
pub struct CalendarClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    max_pages: u32,
    timezone: Option<String>,
}

impl CalendarClient {
    /// `base` is the Graph base including the version (`https://graph.microsoft.com/v1.0`).
    pub fn new(http: reqwest::Client, base: Url, retry: RetryPolicy, max_pages: u32) -> Self {
        CalendarClient { http, base, retry, max_pages: max_pages.max(1), timezone: Some("UTC".into()) }
    }

    /// The time zone of `start`/`end` in answers (`Prefer: outlook.timezone`); `None` leaves
    /// the mailbox's default. Default: UTC.
    pub fn with_timezone(mut self, zone: Option<String>) -> Self {
        self.timezone = zone;
        self
    }

    fn url(&self, user: &CalendarUser, tail: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut segs = url.path_segments_mut().expect("validated graph base");
            segs.pop_if_empty();
            match user {
                CalendarUser::Me => {
                    segs.push("me");
                }
                CalendarUser::UserId(id) => {
                    segs.push("users").push(id);
                }
            }
            segs.extend(tail);
        }
        url
    }

    /// `GET {base}/me/events` or `/users/{id}/events`, every page.
    pub async fn list_events(&self, token: &str, user: &CalendarUser) -> Result<Vec<Event>, ConnectError> {
        self.get_all(token, self.url(user, &["events"])).await
    }

    /// `GET {base}/…/calendarView?startDateTime=&endDateTime=`: occurrences in `[start, end)`,
    /// every page.
    pub async fn calendar_view(
        &self,
        token: &str,
        user: &CalendarUser,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<Event>, ConnectError> {
        let mut url = self.url(user, &["calendarView"]);
        url.query_pairs_mut()
            .append_pair("startDateTime", &graph_instant(start))
            .append_pair("endDateTime", &graph_instant(end));
        self.get_all(token, url).await
    }

    /// Follows `@odata.nextLink` to the end, at most `max_pages` pages. A next link must stay
    /// on the Graph base's origin: the bearer token is never sent elsewhere.
    pub async fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        first: Url,
    ) -> Result<Vec<T>, ConnectError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == self.max_pages {
                return Err(ConnectError::TooManyPages { pages: self.max_pages });
            }
            pages += 1;
            let page: Page<T> = serde_json::from_value(self.get_json(token, &url).await?).map_err(|e| {
                ConnectError::Http { status: Some(200), message: format!("GET {url}: unexpected page shape: {e}") }
            })?;
            out.extend(page.value);
            if let Some(link) = page.next_link {
                next = Some(self.same_origin_link(&link, "@odata.nextLink")?);
            }
        }
        Ok(out)
    }

    /// One GET with retries on 429, 5xx and transport failures.
    pub async fn get_json(&self, token: &str, url: &Url) -> Result<Value, ConnectError> {
        self.send(token, reqwest::Method::GET, url, None, &[]).await
    }

    /// One request with retries on 429, 5xx and transport failures, honouring `Retry-After`;
    /// `prefer` adds `Prefer` preferences besides the time zone. An empty 2xx body is `Null`;
    /// a non-2xx answer is [`ConnectError::Graph`].
    pub(crate) async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
        prefer: &[String],
    ) -> Result<Value, ConnectError> {
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        let mut preferences: Vec<String> = prefer.to_vec();
        if let Some(zone) = &self.timezone {
            preferences.push(format!("outlook.timezone=\"{zone}\""));
        }
        loop {
            let mut req =
                self.http.request(method.clone(), url.clone()).bearer_auth(token).header("Accept", "application/json");
            if !preferences.is_empty() {
                req = req.header("Prefer", preferences.join(", "));
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let res = match req.send().await {
                Ok(res) => res,
                Err(e) if attempt < attempts && (e.is_timeout() || e.is_connect()) => {
                    let wait = delay_for(&self.retry, attempt, None);
                    tracing::warn!(%url, attempt, ?wait, error = %e, "Graph request failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(transport(e)),
            };
            let status = res.status().as_u16();
            if (status == 429 || status >= 500) && attempt < attempts {
                let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
                let wait = delay_for(&self.retry, attempt, retry_after.as_deref());
                tracing::warn!(%url, status, attempt, ?wait, ?retry_after, "Graph throttled or failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            let bytes = res.bytes().await.map_err(transport)?;
            if !(200..300).contains(&status) {
                return Err(graph_error(status, &bytes));
            }
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| ConnectError::Http {
                status: Some(status),
                message: format!("{method} {url}: body is not JSON: {e}"),
            });
        }
    }

    /// `{base}/{path}` for a path relative to the Graph base (`subscriptions/…`).
    pub(crate) fn at(&self, path: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut segs = url.path_segments_mut().expect("validated graph base");
            segs.pop_if_empty();
            segs.extend(path);
        }
        url
    }

    /// A link the server handed out (`@odata.nextLink`, `@odata.deltaLink`): it must stay on
    /// the Graph base's origin, so the bearer token is never sent elsewhere.
    pub(crate) fn same_origin_link(&self, link: &str, what: &str) -> Result<Url, ConnectError> {
        let link = Url::parse(link)
            .map_err(|e| ConnectError::Http { status: Some(200), message: format!("{what} is not a URL: {e}") })?;
        if link.origin() != self.base.origin() {
            return Err(ConnectError::Http {
                status: Some(200),
                message: format!("{what} points to another origin ({})", link.origin().ascii_serialization()),
            });
        }
        Ok(link)
    }

    pub(crate) fn max_pages(&self) -> u32 {
        self.max_pages
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }
}

/// Graph's error body: `{"error":{"code":"ErrorAccessDenied","message":"…"}}`.
pub(crate) fn graph_error(status: u16, body: &[u8]) -> ConnectError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = &v["error"];
    let code = err.get("code").and_then(Value::as_str).unwrap_or("unknown").to_string();
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    ConnectError::Graph { status, code, message }
}

/// `2026-12-01T09:00:00Z` (UTC, whole seconds).
pub(crate) fn graph_instant(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn events_deserialise_from_graph_shape() {
        let page: Page<Event> = serde_json::from_str(
            r#"{"@odata.context":"x","value":[{"id":"AAMk1","subject":"Standup","bodyPreview":"daily",
            "start":{"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC"},
            "end":{"dateTime":"2026-12-01T09:15:00.0000000","timeZone":"UTC"},
            "location":{"displayName":"Room 1"},
            "organizer":{"emailAddress":{"name":"Alice","address":"alice@contoso.test"}},
            "attendees":[{"type":"required","status":{"response":"accepted","time":"0001-01-01T00:00:00Z"},
                          "emailAddress":{"name":"Bob","address":"bob@contoso.test"}}],
            "isOnlineMeeting":true,"onlineMeeting":{"joinUrl":"https://meet.example/1"},
            "webLink":"https://outlook.example/1","unknownField":1},
            {"id":"AAMk2","attendees":null}],
            "@odata.nextLink":"https://graph.microsoft.com/v1.0/me/events?$skip=2"}"#,
        )
        .unwrap();
        let e = &page.value[0];
        assert_eq!(e.subject.as_deref(), Some("Standup"));
        assert_eq!(e.join_url(), Some("https://meet.example/1"));
        assert_eq!(e.attendees[0].email_address.as_ref().unwrap().address.as_deref(), Some("bob@contoso.test"));
        assert_eq!(e.attendees[0].kind.as_deref(), Some("required"));
        assert_eq!(e.start.as_ref().unwrap().to_utc(), Some(datetime!(2026-12-01 09:00 UTC)));
        assert_eq!(e.organizer.as_ref().unwrap().email_address.as_ref().unwrap().name.as_deref(), Some("Alice"));
        assert!(page.value[1].attendees.is_empty());
        assert!(page.next_link.is_some());
    }

    #[test]
    fn urls_and_instants() {
        let c = CalendarClient::new(
            reqwest::Client::new(),
            Url::parse("https://graph.microsoft.com/v1.0").unwrap(),
            RetryPolicy::default(),
            10,
        );
        assert_eq!(c.url(&CalendarUser::Me, &["events"]).as_str(), "https://graph.microsoft.com/v1.0/me/events");
        assert_eq!(
            c.url(&CalendarUser::UserId("alice@contoso.test".into()), &["calendarView"]).as_str(),
            "https://graph.microsoft.com/v1.0/users/alice@contoso.test/calendarView"
        );
        assert_eq!(
            c.url(&CalendarUser::UserId("a/b?c".into()), &["events"]).as_str(),
            "https://graph.microsoft.com/v1.0/users/a%2Fb%3Fc/events"
        );
        assert_eq!(graph_instant(datetime!(2026-12-01 10:00 +01:00)), "2026-12-01T09:00:00Z");
        let e = graph_error(403, br#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#);
        assert!(matches!(&e, ConnectError::Graph { status: 403, code, .. } if code == "ErrorAccessDenied"));
        assert!(e.human().contains("Access is denied."));
    }
}
