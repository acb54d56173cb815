//! A Functions host emulator: talks to a custom handler exactly as
//! docs/host-contract.md (Part 2) says the real host (azure-functions-host 4.x) does, in
//! raw HTTP/1.1 bytes so framing (chunked bodies, header spelling) is under the test's
//! control, and judges the handler's replies by the host's own rules.
//!
//! The exchanges are labelled G1-G7 here and in tests/handler: G1 readiness, G2 the
//! timer in steady state, G3 its variants (first run, unmonitored, past due), G4 an HTTP
//! trigger in payload mode, G5 forward mode, G6 proxy mode, G7 the failure cases.
//!
//! - `wait_ready`: the readiness poll (`GET /` every 25 ms, refused = keep waiting).
//! - `forward`: `enableForwardingHttpRequest` (Forward mode): original path, `code=` kept, query
//!   rebuilt with repeated keys comma-joined, UA appended, invocation headers, body only
//!   with a Content-Length (a chunked upload loses its body).
//! - `proxy`: `enableProxyingHttpRequest` (Proxy mode): raw query, Host rewritten, X-Forwarded-*,
//!   `x-ms-invocation-id`, bodies streamed (chunked stays chunked).
//! - `payload_http` / `timer`: payload mode (Payload mode): `POST /{FunctionName}` with a chunked
//!   `{"Data","Metadata"}` body: headers as arrays in `Data.req`, double-encoded strings
//!   in `Metadata`; the reply is interpreted as the host would (G7).
//!
//! Files: `wire` (raw HTTP/1.1, JSON in the host's key order), `judge` (the caller and
//! how the host reads a reply), `emulator` (the host), `app` (the handler under test).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const HOST_VERSION: &str = "4.1037.0.0";
/// Where the caller thinks the app is (Core Tools' default).
pub const FRONT_HOST: &str = "localhost:7071";

mod app;
mod emulator;
mod judge;
mod wire;

// Each test crate uses a different part of the emulator.
#[allow(unused_imports)]
pub use {app::*, emulator::*, judge::*, wire::*};
