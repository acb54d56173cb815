//! The typed targets and options that `config` produces and the engine consumes. Nothing
//! here parses a file or touches the network: it is the contract between the two.

pub mod ado;
pub mod discovery;
pub mod engine;
pub mod messaging;
pub mod options;
pub mod policy;
pub mod target;
pub mod uri;

pub use discovery::Summary as DiscoverySummary;
pub use engine::{EngineSettings, Timeouts};
pub use options::{
    DbOptions, DbTls, Expectations, HttpOptions, LoginAuth, ManagedIdentity, MsgAuth, MsgOptions,
    Pattern, ScramHash, TargetConfig, TdsOptions, TlsOptions,
};
pub use policy::{HostPattern, PolicyConfig};
pub use target::{Host, QueryType, SqlAuth, TargetError, TargetSpec};
