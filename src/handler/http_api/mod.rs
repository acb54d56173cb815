//! `/api/probe` and `/api/health`, independent of how the request arrived: forward,
//! proxy and direct requests and payload-mode `Data.req` objects are all turned into an
//! `ApiRequest`, and the `ApiReply` is sent as an HTTP response or an `http` output.
//!
//! Status: 200 every target ok, 503 any failed (the body still carries the whole report),
//! 400 bad input, 403 an ad-hoc target refused by policy (or ad-hoc off), 404 no
//! scheduled report yet for `?last`, 405 other methods, 413 over the body limit, 415 a
//! body that is not JSON, 429 every ad-hoc slot busy (`super::error::ErrorClass`).
//!
//! Layout: `request` (what the request says), `reply` (replies and errors), `probe`
//! (configured targets, `?last`, health), `adhoc` (ad-hoc targets under the policy).

mod adhoc;
pub mod history;
mod probe;
mod reply;
mod request;

#[cfg(test)]
mod tests;

pub use probe::{health, probe};
pub use reply::{ApiReply, invocation_value};
pub use request::{ApiRequest, RequestBody};

/// The log-line renderer moved to `render::lines`; these paths stay for callers.
pub use crate::render::lines::{report_lines, summary_line, target_line};
