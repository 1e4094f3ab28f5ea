//! The service layer's one error type. It says what kind of refusal it is; each surface turns
//! it into its own answer in one place: protocol errors and pages (`protocol::errors`), Graph
//! error bodies (`graph::errors`), admin-center pages (`admin_center::layout`), CLI messages.
//!
//! Every refusal also carries the AADSTS error the protocol surfaces show, since the same
//! decision can reach a person through a sign-in page as well as through the admin center.

use accord_core::Aadsts;
use accord_store::StoreError;

#[derive(Debug)]
pub enum ServiceError {
    /// The actor may not do this: a directory role or permission is missing.
    Forbidden(Aadsts),
    /// The object does not exist in the actor's organisation.
    NotFound(Aadsts),
    /// The change conflicts with what exists: a duplicate, a request already decided.
    Conflict(Aadsts),
    /// Any other refusal, in the protocol's words (consent required, not assigned, bad input).
    Refused(Aadsts),
    /// The store cannot be reached for now (the database is away): retry later. Answered 503
    /// with `Retry-After` by every surface.
    Unavailable(Aadsts),
    /// Our fault (a bug, a database error). The text is for logs only.
    Internal(String),
}

/// Seconds a client should wait before retrying while the store is unavailable.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 5;

impl ServiceError {
    /// The actor lacks a role or permission for this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ServiceError::Forbidden(Aadsts::not_permitted(message))
    }

    /// `message` names what was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        ServiceError::NotFound(Aadsts::object_not_found(message))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ServiceError::Conflict(Aadsts::object_conflict(message))
    }

    /// Password work is saturated (`password_work`): the caller should come back later.
    pub fn busy(_: crate::password_work::Busy) -> Self {
        ServiceError::Refused(Aadsts::throttled(crate::password_work::RETRY_AFTER_SECONDS))
    }

    /// The AADSTS error of a refusal; `None` for an internal failure.
    pub fn refusal(&self) -> Option<&Aadsts> {
        match self {
            ServiceError::Forbidden(a)
            | ServiceError::NotFound(a)
            | ServiceError::Conflict(a)
            | ServiceError::Refused(a)
            | ServiceError::Unavailable(a) => Some(a),
            ServiceError::Internal(_) => None,
        }
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.refusal() {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("internal failure"),
        }
    }
}

impl From<Aadsts> for ServiceError {
    fn from(e: Aadsts) -> Self {
        ServiceError::Refused(e)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            // Another write won a race for the same row: the caller may try again.
            StoreError::Stale(_) => ServiceError::conflict(
                "The object was changed by another request at the same time; nothing was written. Try again.",
            ),
            StoreError::Unavailable(_) => {
                ServiceError::Unavailable(Aadsts::store_unavailable(UNAVAILABLE_RETRY_AFTER_SECONDS))
            }
            e => ServiceError::Internal(e.to_string()),
        }
    }
}

impl From<anyhow::Error> for ServiceError {
    fn from(e: anyhow::Error) -> Self {
        ServiceError::Internal(format!("{e:#}"))
    }
}
