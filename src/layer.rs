//! The layers of a probe pipeline: vocabulary shared by the spec (which layers a target
//! plans), the report (which layer answered) and the engine.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The layers of a probe pipeline, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Dns,
    Tcp,
    Tls,
    Tds,
    Http,
    Service,
    Smb,
    Postgres,
    Mysql,
    Redis,
    Amqp,
    Kafka,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Dns => "dns",
            Layer::Tcp => "tcp",
            Layer::Tls => "tls",
            Layer::Tds => "tds",
            Layer::Http => "http",
            Layer::Service => "service",
            Layer::Smb => "smb",
            Layer::Postgres => "postgres",
            Layer::Mysql => "mysql",
            Layer::Redis => "redis",
            Layer::Amqp => "amqp",
            Layer::Kafka => "kafka",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
