//! A PRELOGIN answer from whatever listens on the SQL port: any bytes are a reply or an
//! error string, never a panic or an out-of-bounds read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = routeproof::probe::tds::wire::parse_prelogin(data);
});
