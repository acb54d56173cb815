//! What a user feeds routeproof, one test binary: the `routeproof` binary's commands and
//! exit codes, the provisioning scripts (stubbed `az`, no network), and property tests
//! of every parser that takes outside input.
//!
//! Every process these tests start gets its environment explicitly; nothing here sets
//! process-wide state.

#[path = "../support/mod.rs"]
mod support;

mod commands;
mod parsers;
mod parsers_prelogin;
mod progress;
mod provision;
