//! Calendar sync as Graph expects it: delta rounds per mailbox, change-notification
//! subscriptions (the validation handshake, `clientState` checks, lifecycle events), and
//! `$batch` fan-out with `Retry-After` back-off for the parts Graph throttled.
//!
//! A vendor keeps, per mailbox, the delta link of the last round and a subscription. A change
//! notification or a `missed` lifecycle event means "run a delta round now"; a 410
//! `SyncStateNotFound` means "start over from the window" ([`ConnectError::is_sync_reset`]);
//! `reauthorizationRequired` means "get a fresh token and [`CalendarClient::reauthorize_subscription`]"
//! — and when no fresh token can be had, the customer revoked access: show it at once.

use crate::calendar::{graph_instant, CalendarClient, CalendarUser, Event};
use crate::error::ConnectError;
use crate::retry::delay_for;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;

/// Where a delta round starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaStart {
    /// A first round over `[start, end)`.
    Window { start: OffsetDateTime, end: OffsetDateTime },
    /// The `@odata.deltaLink` of the previous round.
    Link(String),
}

/// What one delta round returned.
#[derive(Clone, Debug, Default)]
pub struct DeltaRound {
    /// Created or updated events (in full).
    pub changed: Vec<Event>,
    /// Ids of events deleted or moved out of the window.
    pub removed: Vec<String>,
    /// Where the next round starts.
    pub delta_link: String,
}

/// A subscription to create.
#[derive(Clone, Debug)]
pub struct SubscriptionRequest {
    /// `me/events` or `users/{id}/events`.
    pub resource: String,
    /// Any of `created`, `updated`, `deleted`.
    pub change_types: Vec<String>,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    /// A secret the vendor checks on every notification ([`parse_notifications`]).
    pub client_state: String,
    pub expiration: OffsetDateTime,
}

/// A subscription as Graph returns it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub change_type: Option<String>,
    #[serde(default)]
    pub expiration_date_time: Option<String>,
    #[serde(default)]
    pub notification_url: Option<String>,
    #[serde(default)]
    pub lifecycle_notification_url: Option<String>,
}

/// One part of a `$batch` answer.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchAnswer {
    pub status: u16,
    pub body: Value,
}

/// Graph's longest lifetime for an event subscription (10,080 minutes), less a margin.
pub const EVENT_SUBSCRIPTION_LIFETIME: time::Duration = time::Duration::minutes(10_080 - 60);
const BATCH_LIMIT: usize = 20;

impl CalendarClient {
    /// One delta round of `user`'s calendar view, every page (`Prefer: odata.maxpagesize`
    /// when `page_size` is given). A 410 `SyncStateNotFound` is returned as
    /// [`ConnectError::Graph`]; [`ConnectError::is_sync_reset`] says to start over.
    pub async fn calendar_delta(
        &self,
        token: &str,
        user: &CalendarUser,
        start: &DeltaStart,
        page_size: Option<u32>,
    ) -> Result<DeltaRound, ConnectError> {
        let mut url = match start {
            DeltaStart::Window { start, end } => {
                let mut url = self.at(&match user {
                    CalendarUser::Me => vec!["me", "calendarView", "delta"],
                    CalendarUser::UserId(id) => vec!["users", id.as_str(), "calendarView", "delta"],
                });
                url.query_pairs_mut()
                    .append_pair("startDateTime", &graph_instant(*start))
                    .append_pair("endDateTime", &graph_instant(*end));
                url
            }
            DeltaStart::Link(link) => self.same_origin_link(link, "the delta link")?,
        };
        let prefer: Vec<String> = page_size.map(|n| format!("odata.maxpagesize={n}")).into_iter().collect();
        let mut round = DeltaRound::default();
        for _ in 0..self.max_pages() {
            let page = self.send(token, reqwest::Method::GET, &url, None, &prefer).await?;
            for item in page["value"].as_array().cloned().unwrap_or_default() {
                if item.get("@removed").is_some() {
                    round.removed.extend(item["id"].as_str().map(str::to_string));
                } else {
                    let ev: Event = serde_json::from_value(item).map_err(|e| ConnectError::Http {
                        status: Some(200),
                        message: format!("a delta item is not an event: {e}"),
                    })?;
                    round.changed.push(ev);
                }
            }
            if let Some(next) = page["@odata.nextLink"].as_str() {
                url = self.same_origin_link(next, "@odata.nextLink")?;
                continue;
            }
            let Some(delta) = page["@odata.deltaLink"].as_str() else {
                return Err(ConnectError::Http {
                    status: Some(200),
                    message: "a delta page carried neither @odata.nextLink nor @odata.deltaLink".into(),
                });
            };
            self.same_origin_link(delta, "@odata.deltaLink")?;
            round.delta_link = delta.to_string();
            return Ok(round);
        }
        Err(ConnectError::TooManyPages { pages: self.max_pages() })
    }

    /// `POST /subscriptions`. Graph calls the notification URLs with a validation token first
    /// ([`validation_token`] answers it).
    pub async fn create_subscription(
        &self,
        token: &str,
        req: &SubscriptionRequest,
    ) -> Result<Subscription, ConnectError> {
        let mut body = json!({
            "changeType": req.change_types.join(","),
            "notificationUrl": req.notification_url,
            "resource": req.resource,
            "expirationDateTime": graph_instant(req.expiration),
            "clientState": req.client_state,
        });
        if let Some(url) = &req.lifecycle_url {
            body["lifecycleNotificationUrl"] = json!(url);
        }
        let v = self.send(token, reqwest::Method::POST, &self.at(&["subscriptions"]), Some(&body), &[]).await?;
        subscription_from(v)
    }

    /// `PATCH /subscriptions/{id}` with a new expiry (also reauthorizes with `token`).
    pub async fn renew_subscription(
        &self,
        token: &str,
        id: &str,
        expiration: OffsetDateTime,
    ) -> Result<Subscription, ConnectError> {
        let body = json!({ "expirationDateTime": graph_instant(expiration) });
        let v = self.send(token, reqwest::Method::PATCH, &self.at(&["subscriptions", id]), Some(&body), &[]).await?;
        subscription_from(v)
    }

    /// `POST /subscriptions/{id}/reauthorize`: resumes notifications after
    /// `reauthorizationRequired`, with a fresh token.
    pub async fn reauthorize_subscription(&self, token: &str, id: &str) -> Result<(), ConnectError> {
        let url = self.at(&["subscriptions", id, "reauthorize"]);
        self.send(token, reqwest::Method::POST, &url, None, &[]).await.map(drop)
    }

    /// `DELETE /subscriptions/{id}`; one that is already gone is fine.
    pub async fn delete_subscription(&self, token: &str, id: &str) -> Result<(), ConnectError> {
        match self.send(token, reqwest::Method::DELETE, &self.at(&["subscriptions", id]), None, &[]).await {
            Ok(_) => Ok(()),
            Err(ConnectError::Graph { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// GETs of Graph paths (relative to the base, e.g. `/users/{id}/calendarView?…`) through
    /// `$batch`, 20 per batch; the answers in the order asked. Parts Graph throttled (429) are
    /// sent again in a new batch after the longest `Retry-After`, within the retry policy's
    /// attempts; then their 429 is the answer.
    pub async fn batch_get(&self, token: &str, paths: &[String]) -> Result<Vec<BatchAnswer>, ConnectError> {
        let mut answers: Vec<Option<BatchAnswer>> = vec![None; paths.len()];
        let mut pending: Vec<usize> = (0..paths.len()).collect();
        let mut attempt = 1;
        while !pending.is_empty() {
            let mut throttled = Vec::new();
            let mut longest: Option<Duration> = None;
            for chunk in pending.chunks(BATCH_LIMIT) {
                let requests: Vec<Value> =
                    chunk.iter().map(|&i| json!({"id": i.to_string(), "method": "GET", "url": paths[i]})).collect();
                let body = json!({ "requests": requests });
                let v = self.send(token, reqwest::Method::POST, &self.at(&["$batch"]), Some(&body), &[]).await?;
                for part in v["responses"].as_array().cloned().unwrap_or_default() {
                    let Some(i) =
                        part["id"].as_str().and_then(|s| s.parse::<usize>().ok()).filter(|i| chunk.contains(i))
                    else {
                        continue;
                    };
                    let status = part["status"].as_u64().unwrap_or(0) as u16;
                    if status == 429 && attempt < self.retry_policy().max_attempts {
                        let after = header(&part, "retry-after");
                        let wait = delay_for(self.retry_policy(), attempt, after.as_deref());
                        longest = Some(longest.map_or(wait, |l| l.max(wait)));
                        throttled.push(i);
                    }
                    answers[i] = Some(BatchAnswer { status, body: part["body"].clone() });
                }
            }
            if let Some(wait) = longest {
                tracing::warn!(parts = throttled.len(), ?wait, "Graph throttled parts of a batch; sending them again");
                tokio::time::sleep(wait).await;
            }
            pending = throttled;
            attempt += 1;
        }
        answers
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                a.ok_or_else(|| ConnectError::Http {
                    status: Some(200),
                    message: format!("the batch answer has no part for request {i}"),
                })
            })
            .collect()
    }
}

fn header(part: &Value, name: &str) -> Option<String> {
    let headers = part["headers"].as_object()?;
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str().map(str::to_string))
}

fn subscription_from(v: Value) -> Result<Subscription, ConnectError> {
    serde_json::from_value(v)
        .map_err(|e| ConnectError::Http { status: Some(200), message: format!("unexpected subscription shape: {e}") })
}

// ---------------------------------------------------------------------------------------------
// The receiving end

/// The token to echo for Graph's validation request (`?validationToken=…`, URL-decoded), if the
/// request is one. Answer it with `200`, `Content-Type: text/plain` and exactly this body.
pub fn validation_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "validationToken").map(|(_, v)| v.into_owned())
}

/// A lifecycle event Graph sends to `lifecycleNotificationUrl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// Get a fresh token and reauthorize (or renew); notifications pause until then. When no
    /// token can be had, the customer revoked access.
    ReauthorizationRequired,
    /// The subscription ended; create it again if access allows.
    SubscriptionRemoved,
    /// Notifications were lost; run a delta round.
    Missed,
    Other(String),
}

/// One accepted notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// An event changed: `change_type` is `created`, `updated` or `deleted`.
    Change {
        subscription_id: String,
        tenant_id: Option<String>,
        change_type: String,
        event_id: Option<String>,
    },
    Lifecycle {
        subscription_id: String,
        tenant_id: Option<String>,
        event: LifecycleEvent,
    },
}

impl Incoming {
    pub fn subscription_id(&self) -> &str {
        match self {
            Incoming::Change { subscription_id, .. } | Incoming::Lifecycle { subscription_id, .. } => subscription_id,
        }
    }
}

/// What a notification POST held: the items whose `clientState` matched the subscription's,
/// and how many were rejected (unknown subscription or wrong `clientState`: not from Graph, or
/// not for us).
#[derive(Clone, Debug, Default)]
pub struct Notifications {
    pub accepted: Vec<Incoming>,
    pub rejected: usize,
}

/// Reads a change or lifecycle notification POST. `client_state_of` gives the `clientState`
/// the vendor set on a subscription it knows (by id), `None` for one it does not.
pub fn parse_notifications(
    body: &[u8],
    client_state_of: impl Fn(&str) -> Option<String>,
) -> Result<Notifications, ConnectError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ConnectError::Http { status: None, message: format!("a notification is not JSON: {e}") })?;
    let items = v["value"]
        .as_array()
        .ok_or_else(|| ConnectError::Http { status: None, message: "a notification has no `value` array".into() })?;
    let mut out = Notifications::default();
    for item in items {
        let Some(subscription_id) = item["subscriptionId"].as_str() else {
            out.rejected += 1;
            continue;
        };
        let presented = item["clientState"].as_str().unwrap_or_default();
        let trusted = client_state_of(subscription_id).is_some_and(|expected| same_secret(&expected, presented));
        if !trusted {
            out.rejected += 1;
            continue;
        }
        let subscription_id = subscription_id.to_string();
        let tenant_id = item["tenantId"].as_str().map(str::to_string);
        let incoming = match item["lifecycleEvent"].as_str() {
            Some(event) => Incoming::Lifecycle {
                subscription_id,
                tenant_id,
                event: match event {
                    "reauthorizationRequired" => LifecycleEvent::ReauthorizationRequired,
                    "subscriptionRemoved" => LifecycleEvent::SubscriptionRemoved,
                    "missed" => LifecycleEvent::Missed,
                    other => LifecycleEvent::Other(other.to_string()),
                },
            },
            None => Incoming::Change {
                subscription_id,
                tenant_id,
                change_type: item["changeType"].as_str().unwrap_or_default().to_string(),
                event_id: item["resourceData"]["id"].as_str().map(str::to_string),
            },
        };
        out.accepted.push(incoming);
    }
    Ok(out)
}

/// Constant-time comparison of two secrets (length leaks, content does not).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `resource` of a subscription to `user`'s events.
pub fn events_resource(user: &CalendarUser) -> String {
    match user {
        CalendarUser::Me => "me/events".into(),
        CalendarUser::UserId(id) => format!("users/{id}/events"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_tokens_are_decoded() {
        assert_eq!(
            validation_token("validationToken=Validation%3A+Testing+client").as_deref(),
            Some("Validation: Testing client")
        );
        assert_eq!(validation_token("tenant=1"), None);
    }

    #[test]
    fn notifications_are_checked_against_client_state() {
        let body = br#"{"value":[
            {"subscriptionId":"s1","clientState":"secret","changeType":"created","tenantId":"t",
             "resourceData":{"id":"e1"}},
            {"subscriptionId":"s1","clientState":"wrong","changeType":"deleted","resourceData":{"id":"e2"}},
            {"subscriptionId":"s9","clientState":"secret","changeType":"created"},
            {"subscriptionId":"s1","clientState":"secret","lifecycleEvent":"reauthorizationRequired"},
            {"clientState":"secret"}]}"#;
        let known = |id: &str| (id == "s1").then(|| "secret".to_string());
        let n = parse_notifications(body, known).unwrap();
        assert_eq!(n.rejected, 3);
        assert_eq!(
            n.accepted,
            vec![
                Incoming::Change {
                    subscription_id: "s1".into(),
                    tenant_id: Some("t".into()),
                    change_type: "created".into(),
                    event_id: Some("e1".into())
                },
                Incoming::Lifecycle {
                    subscription_id: "s1".into(),
                    tenant_id: None,
                    event: LifecycleEvent::ReauthorizationRequired
                },
            ]
        );
        assert!(parse_notifications(b"[]", known).is_err());
        assert!(parse_notifications(b"{", known).is_err());
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab"));
    }
}
