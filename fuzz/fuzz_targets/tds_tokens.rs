//! A server's answer to LOGIN7 or a SQL batch (the token stream): any bytes are a reply
//! or an error string, never a panic, an out-of-bounds read or an allocation past the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = routeproof::probe::tds::tokens::read(data);
});
