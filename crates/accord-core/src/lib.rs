//! Accord's domain: directory objects, scopes, protocol errors and scenario files.
//! Nothing in this crate performs I/O.

pub mod aadsts;
pub mod claims_request;
pub mod clock;
pub mod consent_engine;
pub mod consent_records;
pub mod directory;
pub mod fault_rules;
pub mod ids;
pub mod microsoft_graph;
pub mod scenario;
pub mod scope;
pub mod time_zone;
pub mod well_known;
pub mod wording;

pub use aadsts::{Aadsts, OAuthError};
