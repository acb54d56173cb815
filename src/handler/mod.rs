//! The Azure Functions custom-handler edge: everything that knows about the Functions
//! host lives here, and nothing else does. The engine gets typed targets and a deadline
//! and returns a `Report`, whichever door the request came through.
//!
//! Layout:
//! - `serve`: the `routeproof serve` process: port, logging, signals, exit codes;
//!   `startup`: what it checks before its first answer (config, budgets) and builds after.
//! - `early`: readiness polls answered on the main thread while the runtime starts.
//! - `server`: the HTTP server (`run(listener, state, shutdown)`) and its routes;
//!   `linger`: connections close with a lingering read, so a 413 is never reset.
//! - `invocation`: the three request shapes, correlation ids, the payload envelope.
//! - `payload`: payload mode (`POST /{FunctionName}`), HTTP `Data.req` included.
//! - `http_api`: `/api/probe` and `/api/health`, whatever shape they arrived in
//!   (request parsing, replies, configured and ad-hoc runs).
//! - `client`: the client address the front end saw (the inbound witness on `/api/health`).
//! - `timer`: the `scheduled` timer function and the last report it keeps.
//! - `error`: the handler's error classes, each with its HTTP status.
//! - `negotiate`, `page`: JSON / text / HTML replies.
//! - `flight`: single-flight, so concurrent identical runs share one engine run.
//! - `state`: settings, deadlines under the host's limits, shared state.
//!
//! The wire contract these follow is `docs/host-contract.md` (read from the host's
//! source): strings in `Data`/`Metadata` arrive double-encoded, `res.status` is ignored
//! (we send `statusCode`), an empty or `null` 200 reply hangs the invocation, exit code 0
//! is never restarted, and the host only ever connects to 127.0.0.1.

pub mod client;
pub mod early;
pub mod error;
pub mod flight;
pub mod http_api;
pub mod invocation;
pub mod linger;
pub mod negotiate;
pub mod page;
pub mod payload;
pub mod serve;
pub mod server;
pub mod startup;
pub mod state;
pub mod timer;

pub use error::ErrorClass;
pub use serve::ServeArgs;
pub use server::{router, run};
pub use state::{Settings, State};
