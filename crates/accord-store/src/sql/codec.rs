//! Conversions between domain values and the column types the `Any` driver carries (TEXT,
//! BIGINT, BLOB). Reading never panics: a value the code does not recognise is a
//! [`StoreError::Database`].

use accord_core::consent_records::{RequestStatus, ReviewResult};
use accord_core::directory::{ConsentType, DirectoryRole, MemberKind, PrincipalType, SignInAudience, UserConsent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{KeyStatus, StoreError, StoreResult};

/// Unix microseconds (floor), the unit of every timestamp column.
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    let m = t.unix_timestamp_nanos().div_euclid(1_000);
    // OffsetDateTime spans ±9999 years, ~3.2e17 µs: always within i64.
    i64::try_from(m).unwrap_or(if m < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_micros(column: &str, m: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1_000)
        .map_err(|e| corrupt(column, format!("timestamp {m} out of range: {e}")))
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Any id, typed or not, as its hyphenated text column.
pub(crate) fn id(u: impl Into<Uuid>) -> String {
    u.into().hyphenated().to_string()
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(format!("cannot encode JSON: {e}")))
}

/// The case-folded form used by uniqueness constraints and case-insensitive look-ups. Computed
/// here rather than with SQL `lower()`, whose Unicode handling differs between backends.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Identifier URIs match ignoring case and a trailing slash.
pub(crate) fn identifier_uri_key(uri: &str) -> String {
    fold(uri.trim_end_matches('/'))
}

pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("unreadable value in column {column}: {detail}"))
}

// --- enum <-> text ---
//
// The spellings are written out here (exhaustive matches) rather than borrowed from display
// helpers in accord-core, so that renaming a helper or its output never changes what is stored.

pub(crate) fn user_consent_str(c: UserConsent) -> &'static str {
    match c {
        UserConsent::None => "none",
        UserConsent::Low => "low",
        UserConsent::All => "all",
    }
}

pub(crate) fn user_consent(column: &str, s: &str) -> StoreResult<UserConsent> {
    match s {
        "none" => Ok(UserConsent::None),
        "low" => Ok(UserConsent::Low),
        "all" => Ok(UserConsent::All),
        _ => Err(corrupt(column, format!("unknown user consent setting {s:?}"))),
    }
}

pub(crate) fn member_kind_str(k: MemberKind) -> &'static str {
    match k {
        MemberKind::User => "user",
        MemberKind::Group => "group",
    }
}

pub(crate) fn member_kind(column: &str, s: &str) -> StoreResult<MemberKind> {
    match s {
        "user" => Ok(MemberKind::User),
        "group" => Ok(MemberKind::Group),
        _ => Err(corrupt(column, format!("unknown member kind {s:?}"))),
    }
}

/// Roles are stored by template id (the `wids` value), which never changes.
pub(crate) fn directory_role(column: &str, s: &str) -> StoreResult<DirectoryRole> {
    let id = Uuid::parse_str(s).map_err(|e| corrupt(column, format!("{s:?} is not a UUID: {e}")))?;
    DirectoryRole::from_template_id(id).ok_or_else(|| corrupt(column, format!("unknown role template {s}")))
}

pub(crate) fn sign_in_audience_str(a: SignInAudience) -> &'static str {
    match a {
        SignInAudience::SingleOrg => "single_org",
        SignInAudience::MultipleOrgs => "multiple_orgs",
    }
}

pub(crate) fn sign_in_audience(column: &str, s: &str) -> StoreResult<SignInAudience> {
    match s {
        "single_org" => Ok(SignInAudience::SingleOrg),
        "multiple_orgs" => Ok(SignInAudience::MultipleOrgs),
        _ => Err(corrupt(column, format!("unknown sign-in audience {s:?}"))),
    }
}

pub(crate) fn consent_type_str(c: ConsentType) -> &'static str {
    match c {
        ConsentType::AllPrincipals => "AllPrincipals",
        ConsentType::Principal => "Principal",
    }
}

pub(crate) fn consent_type(column: &str, s: &str) -> StoreResult<ConsentType> {
    match s {
        "AllPrincipals" => Ok(ConsentType::AllPrincipals),
        "Principal" => Ok(ConsentType::Principal),
        _ => Err(corrupt(column, format!("unknown consent type {s:?}"))),
    }
}

pub(crate) fn principal_type_str(p: PrincipalType) -> &'static str {
    match p {
        PrincipalType::User => "User",
        PrincipalType::Group => "Group",
        PrincipalType::ServicePrincipal => "ServicePrincipal",
    }
}

pub(crate) fn principal_type(column: &str, s: &str) -> StoreResult<PrincipalType> {
    match s {
        "User" => Ok(PrincipalType::User),
        "Group" => Ok(PrincipalType::Group),
        "ServicePrincipal" => Ok(PrincipalType::ServicePrincipal),
        _ => Err(corrupt(column, format!("unknown principal type {s:?}"))),
    }
}

pub(crate) fn request_status_str(s: RequestStatus) -> &'static str {
    match s {
        RequestStatus::InProgress => "InProgress",
        RequestStatus::Completed => "Completed",
        RequestStatus::Expired => "Expired",
    }
}

pub(crate) fn request_status(column: &str, s: &str) -> StoreResult<RequestStatus> {
    match s {
        "InProgress" => Ok(RequestStatus::InProgress),
        "Completed" => Ok(RequestStatus::Completed),
        "Expired" => Ok(RequestStatus::Expired),
        _ => Err(corrupt(column, format!("unknown request status {s:?}"))),
    }
}

pub(crate) fn review_result_str(r: ReviewResult) -> &'static str {
    match r {
        ReviewResult::NotReviewed => "NotReviewed",
        ReviewResult::Approved => "Approved",
        ReviewResult::Denied => "Denied",
        ReviewResult::Blocked => "Blocked",
    }
}

pub(crate) fn review_result(column: &str, s: &str) -> StoreResult<ReviewResult> {
    match s {
        "NotReviewed" => Ok(ReviewResult::NotReviewed),
        "Approved" => Ok(ReviewResult::Approved),
        "Denied" => Ok(ReviewResult::Denied),
        "Blocked" => Ok(ReviewResult::Blocked),
        _ => Err(corrupt(column, format!("unknown review result {s:?}"))),
    }
}

pub(crate) fn key_status(column: &str, s: &str) -> StoreResult<KeyStatus> {
    KeyStatus::parse(s).ok_or_else(|| corrupt(column, format!("unknown key status {s:?}")))
}

/// Typed, checked access to the columns of one row.
pub(crate) struct Cols<'r>(pub(crate) &'r AnyRow);

impl Cols<'_> {
    fn get<T>(&self, column: &str) -> StoreResult<T>
    where
        T: for<'a> sqlx::Decode<'a, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        self.0.try_get::<T, _>(column).map_err(|e| corrupt(column, e))
    }

    pub(crate) fn text(&self, column: &str) -> StoreResult<String> {
        self.get(column)
    }

    pub(crate) fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.get(column)
    }

    pub(crate) fn int(&self, column: &str) -> StoreResult<i64> {
        self.get(column)
    }

    pub(crate) fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.get(column)
    }

    pub(crate) fn u32(&self, column: &str) -> StoreResult<u32> {
        let v = self.int(column)?;
        u32::try_from(v).map_err(|_| corrupt(column, format!("{v} is not a count")))
    }

    pub(crate) fn flag(&self, column: &str) -> StoreResult<bool> {
        match self.int(column)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(corrupt(column, format!("{v} is not a boolean (0 or 1)"))),
        }
    }

    /// An id column, as whichever id type the caller expects (typed ids are `From<Uuid>`).
    pub(crate) fn uuid<T: From<Uuid>>(&self, column: &str) -> StoreResult<T> {
        let s = self.text(column)?;
        Uuid::parse_str(&s).map(T::from).map_err(|e| corrupt(column, format!("{s:?} is not a UUID: {e}")))
    }

    pub(crate) fn opt_uuid<T: From<Uuid>>(&self, column: &str) -> StoreResult<Option<T>> {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => Uuid::parse_str(&s)
                .map(|u| Some(T::from(u)))
                .map_err(|e| corrupt(column, format!("{s:?} is not a UUID: {e}"))),
        }
    }

    pub(crate) fn time(&self, column: &str) -> StoreResult<OffsetDateTime> {
        from_micros(column, self.int(column)?)
    }

    pub(crate) fn opt_time(&self, column: &str) -> StoreResult<Option<OffsetDateTime>> {
        self.opt_int(column)?.map(|m| from_micros(column, m)).transpose()
    }

    pub(crate) fn json<T: DeserializeOwned>(&self, column: &str) -> StoreResult<T> {
        let s = self.text(column)?;
        serde_json::from_str(&s).map_err(|e| corrupt(column, format!("invalid JSON: {e}")))
    }

    pub(crate) fn blob(&self, column: &str) -> StoreResult<Vec<u8>> {
        self.get(column)
    }
}
