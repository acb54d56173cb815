//! routeproof proves, layer by layer, that an Azure Function App's private network route
//! works: DNS (which server, CNAME chain, private or public), TCP, then the application.
//!
//! Layout:
//! - `target`: target URIs (`tcp://`, `dns://`, `env:VAR`, ...) parsed into `TargetSpec`.
//! - `config`: the TOML file parsed once into typed settings and targets.
//! - `probe`: the engine (`Engine::run`) and one module per layer (`dns`, `tcp`).
//! - `report`: the versioned report every door returns, with the stable failure classes.
//! - `diagnose`: the hint for each failure class, sharpened by what the probe saw.
//! - `addr`: address classes (private, loopback, link-local, public, Azure platform).
//! - `azure`: the Function App's own facts (site, instance, private IP, route-all, DNS
//!   settings) and the route each address takes out of the instance.
//! - `discover`: targets found in the app's settings (storage, App Insights, SQL, ...).
//! - `policy`: what ad-hoc requests may probe: an allow-list checked on resolved
//!   addresses, and the destinations no list can open (IMDS, 168.63.129.16, loopback).
//! - `secret`: the `Secret` newtype and URL redaction: secrets cannot print.
//! - `render`: the text table for terminals (JSON is the report's serde form).
//! - `demo`: an offline, self-contained run on loopback peers (`routeproof demo`).
//! - `handler`: the Azure Functions custom-handler edge (`routeproof serve`).
//! - `store`: the last report and run history in the app's storage account, shared by
//!   every instance (docs/storage.md).
//! - `telemetry`: OpenTelemetry traces and metrics built from finished reports (OTLP/HTTP),
//!   on only when the standard `OTEL_EXPORTER_OTLP_*` variables are set.

pub mod addr;
pub mod azure;
pub mod config;
pub mod demo;
pub mod diagnose;
pub mod discover;
pub mod handler;
pub mod policy;
pub mod probe;
pub mod render;
pub mod report;
pub mod secret;
pub mod store;
pub mod target;
pub mod telemetry;
