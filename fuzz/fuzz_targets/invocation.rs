//! The Functions host's invocation envelope and the HTTP request inside it: any bytes
//! are an envelope or a named envelope error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use routeproof::handler::{invocation, payload};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = invocation::parse_envelope(data) {
        let _ = invocation::method_name(&env);
        let _ = payload::http_request(&env, 64 * 1024);
    }
    // Values the host double-encodes as strings.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = invocation::unwrap_encoded(&v);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = invocation::parse_traceparent(s);
    }
});
