//! The file as written: serde structs with spans, before validation.
//!
//! Every struct refuses unknown keys. Optional keys are `Option`s or default to empty lists;
//! the defaults themselves are applied in `validate`, so that this module only mirrors the
//! syntax.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    /// The zone of relative times (IANA or Windows name); tenants may override it.
    pub time_zone: Option<S<String>>,
    /// `"keep"` or `"move"`: what a later load does with events placed by relative times.
    pub relative_times: Option<S<String>>,
    /// Declared variables and their defaults; substituted before this struct is read
    /// (`variables.rs`), listed here so the key is known and its values are checked as strings.
    #[serde(default)]
    #[allow(dead_code)] // read for its type check only
    pub variables: std::collections::BTreeMap<String, S<String>>,
    #[serde(default)]
    pub tenant: Vec<S<RawTenant>>,
    /// Limits of Graph and the token endpoint (`[throttling]`).
    pub throttling: Option<S<RawThrottling>>,
    /// Test mode's fault rules (`[[fault]]`), the control API's schema.
    #[serde(default)]
    pub fault: Vec<S<crate::fault_rules::RuleSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThrottling {
    pub mailbox_requests_per_10_minutes: Option<u32>,
    pub mailbox_concurrent: Option<u32>,
    pub tenant_requests_per_10_seconds: Option<u32>,
    pub token_requests_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub id: Option<S<String>>,
    pub display_name: S<String>,
    pub domains: S<Vec<S<String>>>,
    pub user_consent: Option<S<String>>,
    /// The zone of this tenant's relative times; default the scenario's.
    pub time_zone: Option<S<String>>,
    pub admin_consent_requests: Option<S<RawAdminConsentRequests>>,
    #[serde(default)]
    pub user: Vec<S<RawUser>>,
    #[serde(default)]
    pub group: Vec<S<RawGroup>>,
    #[serde(default)]
    pub app: Vec<S<RawApp>>,
    #[serde(default)]
    pub enterprise_app: Vec<S<RawEnterpriseApp>>,
    #[serde(default)]
    pub grant: Vec<S<RawGrant>>,
    #[serde(default)]
    pub assignment: Vec<S<RawAssignment>>,
    #[serde(default)]
    pub event: Vec<S<RawEvent>>,
    /// Accord extension: delegated permission classifications.
    #[serde(default)]
    pub classification: Vec<S<RawClassification>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdminConsentRequests {
    pub enabled: Option<S<bool>>,
    #[serde(default)]
    pub reviewers: Vec<S<String>>,
    pub expire_after_days: Option<S<i64>>,
    pub notify_reviewers: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub upn: S<String>,
    pub display_name: S<String>,
    pub password: Option<S<String>>,
    #[serde(default)]
    pub roles: Vec<S<String>>,
    pub id: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub display_name: S<String>,
    #[serde(default)]
    pub members: Vec<S<String>>,
}

// Moving every span of an entry read on its own (bulk.rs): each field, listed with the struct
// so that a new field is moved too (the equivalence test in scenario/tests.rs fails otherwise).
impl RawUser {
    pub(super) fn moved(self, by: usize) -> Self {
        use super::bulk::shift;
        RawUser {
            upn: shift(self.upn, by),
            display_name: shift(self.display_name, by),
            password: self.password.map(|p| shift(p, by)),
            roles: self.roles.into_iter().map(|r| shift(r, by)).collect(),
            id: self.id.map(|i| shift(i, by)),
        }
    }
}

impl RawGroup {
    pub(super) fn moved(self, by: usize) -> Self {
        use super::bulk::shift;
        RawGroup {
            display_name: shift(self.display_name, by),
            members: self.members.into_iter().map(|m| shift(m, by)).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub app_id: S<String>,
    pub display_name: S<String>,
    pub sign_in_audience: Option<S<String>>,
    #[serde(default)]
    pub redirect_uris: Vec<S<String>>,
    #[serde(default)]
    pub spa_redirect_uris: Vec<S<String>>,
    pub public_client: Option<S<bool>>,
    pub secrets: Option<S<Vec<S<String>>>>,
    /// PEM certificates (`keyCredentials`).
    #[serde(default)]
    pub certificates: Vec<S<String>>,
    pub verified_publisher: Option<S<bool>>,
    pub identifier_uri: Option<S<String>>,
    #[serde(default)]
    pub scope: Vec<S<RawScope>>,
    #[serde(default)]
    pub role: Vec<S<RawRole>>,
    #[serde(default)]
    pub required: Vec<S<RawRequired>>,
    #[serde(default)]
    pub federated_credential: Vec<S<RawFederatedCredential>>,
    pub group_membership_claims: Option<S<String>>,
    pub optional_claims: Option<S<RawOptionalClaims>>,
    pub access_token_version: Option<S<i64>>,
    #[serde(default)]
    pub known_client_applications: Vec<S<String>>,
    #[serde(default)]
    pub pre_authorized: Vec<S<RawPreAuthorized>>,
    /// Accord extension: consent webhooks of the app (`[[tenant.app.webhook]]`).
    #[serde(default)]
    pub webhook: Vec<S<RawWebhook>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub url: S<String>,
    pub secret: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPreAuthorized {
    pub app: S<String>,
    pub scopes: S<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOptionalClaims {
    #[serde(default)]
    pub id_token: Vec<S<String>>,
    #[serde(default)]
    pub access_token: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFederatedCredential {
    pub name: S<String>,
    pub issuer: S<String>,
    pub subject: S<String>,
    pub audiences: Option<S<Vec<S<String>>>>,
    pub description: Option<S<String>>,
    pub jwks: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScope {
    pub id: Option<S<String>>,
    pub value: S<String>,
    pub admin_consent_required: Option<S<bool>>,
    pub admin_consent_display_name: Option<S<String>>,
    pub admin_consent_description: Option<S<String>>,
    pub user_consent_display_name: Option<S<String>>,
    pub user_consent_description: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub id: Option<S<String>>,
    pub value: S<String>,
    pub allowed_member_types: S<Vec<S<String>>>,
    pub display_name: Option<S<String>>,
    pub description: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequired {
    pub resource: Option<S<String>>,
    #[serde(default)]
    pub delegated: Vec<S<String>>,
    #[serde(default)]
    pub application: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnterpriseApp {
    pub app: S<String>,
    pub assignment_required: Option<S<bool>>,
    pub enabled: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrant {
    pub app: S<String>,
    pub resource: Option<S<String>>,
    #[serde(default)]
    pub delegated: Vec<S<String>>,
    #[serde(rename = "for")]
    pub for_: Option<S<String>>,
    #[serde(default)]
    pub application: Vec<S<String>>,
    /// A time-bound grant's end (an instant or a relative time).
    pub expires: Option<S<RawDateTime>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAssignment {
    pub app: S<String>,
    pub principal: S<String>,
    pub role: Option<S<String>>,
    /// A time-bound assignment's end (an instant or a relative time).
    pub expires: Option<S<RawDateTime>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClassification {
    pub resource: Option<S<String>>,
    pub low: S<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    pub owner: S<String>,
    pub subject: S<String>,
    pub start: S<RawDateTime>,
    pub end: S<RawDateTime>,
    #[serde(default)]
    pub attendees: Vec<S<String>>,
    pub online_meeting_url: Option<S<String>>,
}

/// A date-time written either as a string (`"2026-12-01T09:00:00Z"`, `"monday 09:00"`) or as a
/// TOML date-time (`2026-12-01T09:00:00Z`); kept as text and read during validation
/// (`relative_time.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawDateTime(pub String);

impl<'de> Deserialize<'de> for RawDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDateTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date-time: RFC 3339 (a string or a TOML offset date-time) or a relative time")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDateTime, E> {
                Ok(RawDateTime(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDateTime, A::Error> {
                let dt = toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawDateTime(dt.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}
