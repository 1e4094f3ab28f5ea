//! Delivery of the notification outbox by SMTP.
//!
//! The services enqueue notifications in the store (`Change::EnqueueNotification`), in the same
//! transaction as the change they tell about; they are always visible there. When an SMTP server
//! is configured (`smtp_url`), a worker takes the unsent ones every `outbox_interval` (and right
//! after start) and sends each as a plain-text mail, marking it sent, or counting a failed attempt
//! with its error. A message is retried with exponential backoff (30 s, 1 min, 2 min, … at most
//! an hour apart) and left alone after [`MAX_ATTEMPTS`], unsent and visible with its last error.
//! Each attempt is claimed in the store first, so replicas over one database never send the same
//! attempt twice. Without `smtp_url` nothing is attempted.

use accord_core::consent_records::Notification;
use accord_store::{Store, StoreResult};
use anyhow::{anyhow, Context};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Messages taken per run (more are looked at when older ones are waiting for a retry).
pub const BATCH: u32 = 50;
/// Failed attempts after which a message is left unsent.
pub const MAX_ATTEMPTS: u32 = 10;
/// The most unsent messages one run looks at to find `BATCH` that are due.
const MAX_SCAN: u32 = 1_000;
const BACKOFF_BASE_SECONDS: i64 = 30;
const BACKOFF_CAP_SECONDS: i64 = 3_600;
/// How long one replica's claim on an attempt keeps the others off it.
const CLAIM_SECONDS: i64 = 600;
/// Per SMTP command.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
const MAX_ERROR_CHARS: usize = 500;

/// Where and as whom notifications are mailed. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct SmtpSettings {
    url: String,
    from: Mailbox,
}

impl SmtpSettings {
    /// Checks `url` as lettre understands it (`smtp://host:port`, `smtps://user:pass@host:465`,
    /// `smtp://host:587?tls=required|opportunistic`) and the sender; without a sender,
    /// `Accord <noreply@HOST>` with the public URL's host.
    pub fn parse(url: &str, from: Option<&str>, public_url: &str) -> anyhow::Result<Self> {
        // Errors name the URL only with its password hidden.
        let parsed = url::Url::parse(url).map_err(|e| anyhow!("smtp_url is not a URL: {e}"))?;
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow!("smtp_url '{}' is not usable: {e}", redact(&parsed)))?;
        let from = match from {
            Some(from) => from.parse::<Mailbox>().with_context(|| format!("smtp_from '{from}' is not a mailbox"))?,
            None => default_from(public_url),
        };
        Ok(SmtpSettings { url: url.to_string(), from })
    }

    /// The URL with its password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        url::Url::parse(&self.url).map(|u| redact(&u)).unwrap_or_else(|_| "(invalid URL)".into())
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|e| anyhow!("smtp_url '{}' is not usable: {e}", self.redacted_url()))?;
        Ok(builder.timeout(Some(SMTP_TIMEOUT)).build())
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings").field("url", &self.redacted_url()).field("from", &self.from.to_string()).finish()
    }
}

fn redact(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

fn default_from(public_url: &str) -> Mailbox {
    let host = url::Url::parse(public_url).ok().and_then(|u| u.host_str().map(str::to_string));
    host.and_then(|h| format!("Accord <noreply@{h}>").parse().ok())
        .unwrap_or_else(|| "Accord <noreply@localhost>".parse().expect("a valid mailbox"))
}

/// Starts the outbox worker when SMTP is configured; otherwise says once that delivery is off.
pub fn spawn_outbox(
    store: Arc<dyn Store>,
    smtp: Option<&SmtpSettings>,
    interval: std::time::Duration,
) -> anyhow::Result<()> {
    let Some(smtp) = smtp else {
        tracing::info!("notification delivery is off (no smtp_url): notifications are kept in the store only");
        return Ok(());
    };
    let mut outbox = Outbox::new(smtp)?;
    tracing::info!(
        smtp = %smtp.redacted_url(),
        from = %smtp.from,
        interval_ms = interval.as_millis() as u64,
        "delivering notifications by SMTP"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The first tick is immediate: mail waiting from before a restart goes out at start.
            tick.tick().await;
            match outbox.run_once(&*store, accord_core::clock::now()).await {
                Ok(run) if run.sent + run.failed > 0 => {
                    tracing::info!(sent = run.sent, failed = run.failed, "notification outbox run")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "notification outbox run failed"),
            }
        }
    });
    Ok(())
}

/// What one run of the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxRun {
    pub sent: usize,
    pub failed: usize,
}

/// The delivery worker's state: the transport and, per message, this process's last attempt.
pub struct Outbox {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    last_attempt: HashMap<Uuid, OffsetDateTime>,
}

struct SendFailure {
    message: String,
    /// The server could not be reached at all (not an answer about this one message): the rest
    /// of the run waits for the next one instead of each failing in turn.
    server_unreachable: bool,
}

impl Outbox {
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        Ok(Outbox { transport: settings.transport()?, from: settings.from.clone(), last_attempt: HashMap::new() })
    }

    /// Sends what is due: at most one attempt per message per run.
    pub async fn run_once(&mut self, store: &dyn Store, now: OffsetDateTime) -> StoreResult<OutboxRun> {
        self.last_attempt.retain(|_, at| now - *at < Duration::seconds(BACKOFF_CAP_SECONDS));
        let mut run = OutboxRun::default();
        for n in self.due(store, now).await? {
            if !store.consume_once(&claim_key(&n), now + Duration::seconds(CLAIM_SECONDS)).await? {
                continue; // another replica is on this attempt
            }
            self.last_attempt.insert(n.id, now);
            match self.send(&n).await {
                Ok(()) => {
                    store.mark_notification(n.tenant_id, n.id, Some(accord_core::clock::now()), None).await?;
                    self.last_attempt.remove(&n.id);
                    metrics::counter!("accord_notifications_sent_total", "kind" => n.kind.clone()).increment(1);
                    tracing::debug!(tenant = %n.tenant_id, notification = %n.id, kind = %n.kind, "notification sent");
                    run.sent += 1;
                }
                Err(failure) => {
                    store.mark_notification(n.tenant_id, n.id, None, Some(&failure.message)).await?;
                    metrics::counter!("accord_notifications_failed_total", "kind" => n.kind.clone()).increment(1);
                    let attempts = n.attempts + 1;
                    if attempts >= MAX_ATTEMPTS {
                        tracing::error!(tenant = %n.tenant_id, notification = %n.id, kind = %n.kind, attempts,
                            error = %failure.message, "giving up on a notification: it stays unsent in the store");
                    } else {
                        tracing::warn!(tenant = %n.tenant_id, notification = %n.id, kind = %n.kind, attempts,
                            error = %failure.message, "sending a notification failed; it will be retried");
                    }
                    run.failed += 1;
                    if failure.server_unreachable {
                        break;
                    }
                }
            }
        }
        Ok(run)
    }

    /// Up to `BATCH` unsent messages that are due, oldest first. The store leaves out messages
    /// given up; those waiting for a retry do not hold the newer ones back: the scan widens past
    /// them (up to `MAX_SCAN`).
    async fn due(&self, store: &dyn Store, now: OffsetDateTime) -> StoreResult<Vec<Notification>> {
        let mut limit = BATCH;
        loop {
            let batch = store.unsent_notifications(MAX_ATTEMPTS, limit).await?;
            let complete = (batch.len() as u64) < u64::from(limit);
            let scanned = batch.len();
            let mut due: Vec<Notification> = batch.into_iter().filter(|n| self.is_due(n, now)).collect();
            if due.len() >= BATCH as usize || complete || limit >= MAX_SCAN {
                due.truncate(BATCH as usize);
                return Ok(due);
            }
            // The batch was full and fewer than BATCH were due: look past the waiting ones.
            let waiting = (scanned - due.len()) as u32;
            limit = (BATCH + waiting).min(MAX_SCAN);
        }
    }

    fn is_due(&self, n: &Notification, now: OffsetDateTime) -> bool {
        n.attempts < MAX_ATTEMPTS
            && now >= n.created_at + first_retry_after(n.attempts)
            && self.last_attempt.get(&n.id).is_none_or(|at| now >= *at + backoff(n.attempts))
    }

    async fn send(&self, n: &Notification) -> Result<(), SendFailure> {
        let refuse = |message: String| SendFailure { message, server_unreachable: false };
        let to: Mailbox = n
            .recipient_address
            .parse()
            .map_err(|e| refuse(format!("recipient '{}' is not a mail address: {e}", n.recipient_address)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(n.subject.clone())
            .message_id(Some(format!("<{}@{}>", n.id, self.from.email.domain())))
            .header(KindHeader(n.kind.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(n.body.clone())
            .map_err(|e| refuse(format!("building the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(SendFailure { message: truncate(e.to_string()), server_unreachable: e.status().is_none() }),
        }
    }
}

/// The wait before attempt number `attempts + 1` after attempt number `attempts` (none before
/// the first): 30 s, 1 min, 2 min, … doubling up to an hour.
pub fn backoff(attempts: u32) -> Duration {
    if attempts == 0 {
        return Duration::ZERO;
    }
    let factor = 1i64 << (attempts - 1).min(20);
    Duration::seconds((BACKOFF_BASE_SECONDS * factor).min(BACKOFF_CAP_SECONDS))
}

/// The earliest time after creation at which attempt `attempts + 1` may happen, so the backoff
/// holds across restarts and replicas too (a process also remembers its own last attempt).
fn first_retry_after(attempts: u32) -> Duration {
    (1..=attempts).map(backoff).fold(Duration::ZERO, |sum, d| sum + d)
}

/// One claim per message and attempt number.
fn claim_key(n: &Notification) -> String {
    let digest = Sha256::digest(format!("outbox:{}:{}:{}", n.tenant_id, n.id, n.attempts).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate(mut s: String) -> String {
    if s.chars().count() > MAX_ERROR_CHARS {
        s = s.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    s
}

/// `X-Accord-Notification: request.new`, so mail can be filtered by kind.
#[derive(Clone)]
struct KindHeader(String);

impl Header for KindHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Accord-Notification")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(KindHeader(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(8), Duration::seconds(3_600));
        assert_eq!(backoff(60), Duration::seconds(3_600));
        assert_eq!(first_retry_after(0), Duration::ZERO);
        assert_eq!(first_retry_after(3), Duration::seconds(30 + 60 + 120));
    }

    #[test]
    fn settings_hide_the_password_and_default_the_sender() {
        let s =
            SmtpSettings::parse("smtps://mailer:s3cret@mail.example.com:465", None, "https://id.example.com").unwrap();
        assert_eq!(s.redacted_url(), "smtps://mailer:***@mail.example.com:465");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert_eq!(s.from().to_string(), "Accord <noreply@id.example.com>");
        let s =
            SmtpSettings::parse("smtp://localhost:2525", Some("Accord <noreply@accord.test>"), "https://x").unwrap();
        assert_eq!(s.from().email.to_string(), "noreply@accord.test");
        assert!(SmtpSettings::parse("smtp://host:587?tls=required", None, "https://x").is_ok());
        let err = SmtpSettings::parse("ftp://u:s3cret@host", None, "https://x").unwrap_err();
        assert!(!format!("{err:#}").contains("s3cret"), "{err:#}");
        assert!(SmtpSettings::parse("smtp://localhost", Some("not a mailbox"), "https://x").is_err());
    }
}
