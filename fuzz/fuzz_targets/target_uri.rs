//! Target URIs, ADO.NET connection strings and `env:` indirection: never a panic, and
//! whatever parses renders (Display/Debug are what reports and logs print).
#![no_main]

use libfuzzer_sys::fuzz_target;
use routeproof::target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = target::parse_uri(s) {
        let _ = format!("{spec} {spec:?}");
        let _ = (spec.layers(), spec.host(), spec.dns_name(), spec.port());
    }
    if let Ok(spec) = target::parse_ado(s) {
        let _ = format!("{spec} {spec:?}");
        let _ = (spec.layers(), spec.port());
    }
    let _ = target::parse_host(s);
    // The same text as an app setting's value, reached through `env:`.
    let lookup = |k: &str| (k == "FUZZ").then(|| s.to_string());
    if let Ok(spec) = target::parse("env:FUZZ", &lookup) {
        let _ = format!("{spec} {spec:?}");
    }
});
