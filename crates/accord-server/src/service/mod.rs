//! The service layer: the use cases every surface (protocol endpoints, pages, the Graph API,
//! the CLI) calls. A service asks the pure consent engine (`accord_core::consent_engine`) and
//! reads and writes the store; it never imports a surface (`tests/architecture.rs` checks).

pub mod admin_consent_requests;
pub mod administration;
pub mod calendar_sync;
pub mod consent;
pub mod consent_webhooks;
pub mod coverage;
pub mod device_authorization;
pub mod error;
pub mod grant_expiry;
pub mod maintenance;
pub mod notifications;
pub mod replication;
pub mod scenario_loader;
pub mod sign_in;
pub mod test_mode;
pub mod tokens;
pub use error::ServiceError;
