//! The Accord server: protocol endpoints, pages, services, configuration and TLS.

pub(crate) mod admin_center;
pub(crate) mod app;
pub(crate) mod client_certificates;
pub mod commands;
pub mod config;
pub mod crypto;
pub(crate) mod decision_journal;
pub mod egress;
pub(crate) mod federation;
pub(crate) mod graph;
pub(crate) mod lockout;
pub(crate) mod my_apps;
pub mod ops;
pub mod password_work;
pub(crate) mod portal;
pub(crate) mod protocol;
pub(crate) mod replication_lag;
pub mod serve;
pub mod service;
pub mod signing;
pub(crate) mod state;
pub(crate) mod tenancy;
pub(crate) mod test_control;
pub(crate) mod throttle;
pub(crate) mod tls;
pub(crate) mod web;
