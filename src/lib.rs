//! routeproof proves, layer by layer, that an Azure Function App's private network route
//! works: DNS (which server, CNAME chain, private or public), TCP, then the application.
//!
//! The modules form tiers; a module imports only its own tier and lower ones (see
//! docs/architecture.md, enforced by the unit test in src/tiers.rs):
//!
//! 0. leaf vocabulary: `addr`, `secret`, `env` (`EnvLookup`, `ConfigError`), `layer`,
//!    `budget`, `zone` (privatelink names), `setting` (yes/no values, W3C `traceparent`).
//! 1. `spec`: the typed targets and options config produces and the engine consumes.
//! 2. `report`: the versioned report, the failure classes and the Azure evidence types.
//! 3. `config`: the TOML file parsed into `spec`, one file per section.
//! 4. `diagnose`: the hint for each failure class.
//! 5. `platform`: Azure facts and route reasoning, discovery, DNS servers; `store`: the
//!    last report and run history in the app's storage account (docs/storage.md).
//! 6. `policy`: what ad-hoc requests may probe (`AddressPolicy`).
//! 7. `probe::{dns, tcp, tls, http, tds, step}`: the layers, one shape each.
//! 8. the engine: `probe` (`Engine::run`), `probe::pipeline`, `probe::hop`.
//! 9. the doors: `app`, `demo`, `handler`, `render`, `telemetry`, and `main.rs`.
//!
//! `target`, `azure` and `discover` are kept as paths to their new homes.

pub mod addr;
pub mod app;
pub mod budget;
pub mod config;
pub mod demo;
pub mod diagnose;
pub mod env;
pub mod handler;
pub mod layer;
pub mod platform;
pub mod policy;
pub mod probe;
pub mod render;
pub mod report;
pub mod secret;
pub mod setting;
pub mod spec;
pub mod store;
pub mod telemetry;
pub mod zone;

pub use platform::{azure, discover};
pub use spec::target;

#[cfg(test)]
mod tiers;
