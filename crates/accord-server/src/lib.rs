//! The Accord server: protocol endpoints, pages, services, configuration and TLS.

pub mod admin_center;
pub mod app;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod graph;
pub mod my_apps;
pub mod ops;
pub mod portal;
pub mod protocol;
pub mod serve;
pub mod service;
pub mod signing;
pub mod state;
pub mod tenancy;
pub mod tls;
pub mod web;
