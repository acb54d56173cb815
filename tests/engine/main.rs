//! The engine and its layers against real peers on loopback, one test binary (every
//! integration-test binary links the whole stack, so themes share one): the DNS, TCP,
//! TLS/HTTP and TDS layers, the address policy, Azure awareness (resolver comparison,
//! discovery, the simulated Function App report), the fault battery, and the checks
//! that the DNS and TDS test peers behave like the real thing.
//!
//! Nothing here sets process-wide state other tests could see (no environment
//! variables, no global subscriber); the battery's panic hook only counts panics, so in
//! this binary it counts those of every engine test (stricter, never weaker).

#[path = "../support/mod.rs"]
mod support;

mod azure_discover;
mod azure_dns;
mod azure_report;
mod battery;
mod dns;
mod dns_peers;
mod policy;
mod tcp;
mod tds;
mod tds_login;
mod tds_peer;
mod tls_http;
