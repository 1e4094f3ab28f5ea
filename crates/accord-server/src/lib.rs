//! The Accord server: protocol endpoints, pages, services, configuration and TLS.

pub mod admin_center;
pub mod admin_consent_requests;
pub mod administration;
pub mod app;
pub mod commands;
pub mod config;
pub mod consent;
pub mod crypto;
pub mod graph;
pub mod my_apps;
pub mod notifications;
pub mod ops;
pub mod protocol;
pub mod scenario_loader;
pub mod serve;
pub mod sign_in;
pub mod signing;
pub mod state;
pub mod tenancy;
pub mod tls;
pub mod tokens;
pub mod web;
