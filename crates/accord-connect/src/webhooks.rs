//! Receiving Accord's consent webhooks: signed as Standard Webhooks specifies. A vendor's
//! endpoint passes the three headers, the raw body and its secrets (`whsec_…`, more than one
//! during a rotation) to [`verify_consent_webhook`], and acts on the event only when it returns
//! `Ok`: the signature matches one of the secrets, the timestamp is within five minutes of now,
//! and the body is an event. Dropping duplicates by [`ConsentWebhookEvent::id`] (the same across
//! retries) is the receiver's part.

use crate::error::ConnectError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use time::OffsetDateTime;

/// How far a webhook's timestamp may be from now.
pub const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;

/// A verified consent event.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsentWebhookEvent {
    /// `webhook-id`: the same on every retry of one event.
    pub id: String,
    /// `consent.granted`, `consent.changed`, `consent.revoked`, `assignment.added`,
    /// `assignment.removed`, `app.disabled`, `app.enabled`, `app.deleted`, `consent_request.filed`,
    /// `consent_request.approved`, `consent_request.denied`, `consent_request.blocked`,
    /// `consent_request.expired`, and `app.permissions_changed` (the registration's required
    /// permissions changed; an event of its home tenant).
    pub kind: String,
    pub tenant_id: Option<String>,
    pub app_id: Option<String>,
    /// The whole `data` object.
    pub data: Value,
}

fn rejected(why: &str) -> ConnectError {
    ConnectError::WebhookRejected(why.to_string())
}

/// Verifies a consent webhook (headers `webhook-id`, `webhook-timestamp`, `webhook-signature`).
pub fn verify_consent_webhook(
    id: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    secrets: &[String],
    now: OffsetDateTime,
) -> Result<ConsentWebhookEvent, ConnectError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| rejected("webhook-timestamp is not a number"))?;
    if (now.unix_timestamp() - ts).abs() > WEBHOOK_TOLERANCE_SECONDS {
        return Err(rejected("webhook-timestamp is more than five minutes from now (a replay?)"));
    }
    if id.is_empty() || id.contains('.') || timestamp.contains('.') {
        return Err(rejected("webhook-id is missing or malformed"));
    }
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(body);
    let presented: Vec<Vec<u8>> =
        signature.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|b| B64.decode(b).ok()).collect();
    let matches = secrets.iter().filter_map(|s| s.strip_prefix("whsec_").and_then(|k| B64.decode(k).ok())).any(|key| {
        presented.iter().any(|sig| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac takes any key");
            mac.update(&signed);
            mac.verify_slice(sig).is_ok() // constant time
        })
    });
    if !matches {
        return Err(rejected("no signature matches the webhook's secrets"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| rejected("the body is not JSON"))?;
    let kind = v["type"].as_str().ok_or_else(|| rejected("the body has no event type"))?.to_string();
    let data = v["data"].clone();
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(ConsentWebhookEvent { id: id.to_string(), kind, tenant_id: text("tenantId"), app_id: text("appId"), data })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks test vector.
    #[test]
    fn the_specifications_vector_verifies_and_tampering_does_not() {
        let secret = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()];
        let at = OffsetDateTime::from_unix_timestamp(1614265330).unwrap();
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        // The vector's body has no event type: the signature passes, the shape does not.
        let e = verify_consent_webhook(id, "1614265330", sig, body, &secret, at).unwrap_err();
        assert!(e.to_string().contains("event type"), "{e}");
        let e = verify_consent_webhook(id, "1614265330", sig, br#"{"test": 2432232315}"#, &secret, at).unwrap_err();
        assert!(e.to_string().contains("no signature matches"), "{e}");
        let later = at + time::Duration::minutes(6);
        assert!(verify_consent_webhook(id, "1614265330", sig, body, &secret, later)
            .unwrap_err()
            .to_string()
            .contains("five minutes"));
        let other = vec!["whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string()];
        assert!(verify_consent_webhook(id, "1614265330", &format!("v1,AAAA {sig}"), body, &other, at).is_err());
    }
}
