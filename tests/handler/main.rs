//! The custom-handler edge, one test binary: the host contract and /api/probe through
//! the host emulator, bad input, the deployable layout, `routeproof serve` as a child
//! process and its start-up, the HTML page, /api/metrics and ad-hoc policy.
//!
//! Nothing here sets process-wide state other tests could see (no environment
//! variables, no global subscriber, no signal handlers: signals go to child processes).

#[path = "../support/mod.rs"]
mod support;

mod api;
mod bad_input;
mod contract;
mod doors;
mod html;
mod inbound;
mod layout;
mod metrics;
mod policy;
mod process;
mod startup;
