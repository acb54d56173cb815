//! Target URIs as typed values (parsed by `spec::uri` and `spec::ado`). Everything downstream matches on
//! `TargetSpec`; no layer re-reads a string.
//!
//! | URI | layers |
//! |---|---|
//! | `dns://NAME[?type=A\|AAAA\|CNAME\|TXT\|SRV\|MX]` | dns |
//! | `tcp://HOST:PORT` | dns, tcp |
//! | `tls://HOST[:PORT][?sni=NAME]` | dns, tcp, tls |
//! | `http://…`, `https://…` | dns, tcp, (tls), http |
//! | `sqlserver://HOST[:PORT][/DATABASE]` | dns, tcp, tds |
//! | `smb://HOST[:PORT]` (445) | dns, tcp, smb |
//! | `postgres://HOST[:5432][/DATABASE]` | dns, tcp, postgres (TLS inside) |
//! | `mysql://HOST[:3306][/DATABASE]` | dns, tcp, mysql (TLS inside) |
//! | `redis://HOST[:6379]`, `rediss://HOST[:6380]` | dns, tcp, (tls), redis |
//! | `amqps://HOST[:5671][/ENTITY]`, `amqp://HOST[:5672][/ENTITY]` (plain, test brokers) | dns, tcp, (tls), amqp |
//! | `amqpwss://HOST[:443][/PATH]`, `amqpws://HOST[:80][/PATH]`: AMQP over WebSockets (Qpid JMS's schemes); PATH defaults to `/$servicebus/websocket` | dns, tcp, (tls), amqp |
//! | `kafka://HOST[:9093]` (TLS; the target key `tls = "disable"` for a plain test broker) | dns, tcp, tls, kafka |
//! | `env:VAR` holding `Endpoint=sb://NS/;SharedAccessKeyName=…;SharedAccessKey=…` | as `amqps://NS:5671`, logging in with the connection string |
//! | `env:VAR` | the value of app setting VAR: a URI above or an ADO.NET connection string |

use std::fmt;
use std::net::IpAddr;

use crate::layer::Layer;
use crate::secret::{Secret, redact_url};

pub use super::ado::parse_ado;
pub use super::uri::{parse, parse_host, parse_uri};

/// A target URI that cannot be probed. The message names the problem in user terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, TargetError> {
    Err(TargetError(msg.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// Lower-case, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// DNS record types a `dns://` target may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    A,
    Aaaa,
    Cname,
    Txt,
    Srv,
    Mx,
}

impl QueryType {
    pub fn parse(s: &str) -> Result<QueryType, TargetError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "A" => QueryType::A,
            "AAAA" => QueryType::Aaaa,
            "CNAME" => QueryType::Cname,
            "TXT" => QueryType::Txt,
            "SRV" => QueryType::Srv,
            "MX" => QueryType::Mx,
            other => {
                return err(format!(
                    "unsupported DNS type `{other}` (use A, AAAA, CNAME, TXT, SRV or MX)"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
            QueryType::Cname => "CNAME",
            QueryType::Txt => "TXT",
            QueryType::Srv => "SRV",
            QueryType::Mx => "MX",
        }
    }
}

/// SQL credentials from a connection string, kept for the TDS layer. Only the user name
/// is ever shown; the password is a `Secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlAuth {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub authentication: Option<String>,
    /// `Encrypt=Strict`: TDS 8, TLS before PRELOGIN.
    pub strict: bool,
    pub trust_server_certificate: bool,
    pub hostname_in_certificate: Option<String>,
}

/// `Debug` is the redacted `Display` (see below): a derived one would print the URL's
/// user-info and `sig=` values into any `{:?}` of a config.
#[derive(Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Dns {
        name: String,
        qtype: QueryType,
    },
    Tcp {
        host: Host,
        port: u16,
    },
    Tls {
        host: Host,
        port: u16,
        sni: Option<String>,
    },
    Http {
        url: url::Url,
        host: Host,
        port: u16,
    },
    Sql {
        host: Host,
        port: u16,
        database: Option<String>,
        auth: SqlAuth,
    },
    /// SMB2 NEGOTIATE (the content share on 445).
    Smb {
        host: Host,
        port: u16,
    },
    Postgres {
        host: Host,
        port: u16,
        database: Option<String>,
    },
    Mysql {
        host: Host,
        port: u16,
        database: Option<String>,
    },
    /// `rediss://` is `tls: true`.
    Redis {
        host: Host,
        port: u16,
        tls: bool,
    },
    /// AMQP 1.0 (Service Bus, Event Hubs). `amqps://`/`amqpwss://` are `tls: true`;
    /// `amqpws(s)://` set `websocket` to the request path.
    Amqp {
        host: Host,
        port: u16,
        tls: bool,
        websocket: Option<String>,
        /// Queue, topic or event hub: the CBS audience of a token login.
        entity: Option<String>,
        /// A Service Bus / Event Hubs connection string the target came from (`env:VAR`).
        connection_string: Option<Secret>,
    },
    /// Kafka (Event Hubs' Kafka endpoint, 9093). TLS unless the target key says `disable`.
    Kafka {
        host: Host,
        port: u16,
        connection_string: Option<Secret>,
    },
}

impl TargetSpec {
    /// The layers this target runs through, in order: the plan `check` prints.
    pub fn layers(&self) -> Vec<Layer> {
        let needs_dns = matches!(self.host(), Some(Host::Name(_))) || self.host().is_none();
        let mut v = Vec::new();
        if needs_dns {
            v.push(Layer::Dns);
        }
        match self {
            TargetSpec::Dns { .. } => {}
            TargetSpec::Tcp { .. } => v.push(Layer::Tcp),
            TargetSpec::Tls { .. } => v.extend([Layer::Tcp, Layer::Tls]),
            TargetSpec::Http { url, .. } => {
                v.push(Layer::Tcp);
                if url.scheme() == "https" {
                    v.push(Layer::Tls);
                }
                v.push(Layer::Http);
            }
            TargetSpec::Sql { .. } => v.extend([Layer::Tcp, Layer::Tds]),
            TargetSpec::Smb { .. } => v.extend([Layer::Tcp, Layer::Smb]),
            TargetSpec::Postgres { .. } => v.extend([Layer::Tcp, Layer::Tls, Layer::Postgres]),
            TargetSpec::Mysql { .. } => v.extend([Layer::Tcp, Layer::Tls, Layer::Mysql]),
            TargetSpec::Redis { tls: true, .. } => v.extend([Layer::Tcp, Layer::Tls, Layer::Redis]),
            TargetSpec::Redis { .. } => v.extend([Layer::Tcp, Layer::Redis]),
            TargetSpec::Amqp { tls: true, .. } => v.extend([Layer::Tcp, Layer::Tls, Layer::Amqp]),
            TargetSpec::Amqp { .. } => v.extend([Layer::Tcp, Layer::Amqp]),
            TargetSpec::Kafka { .. } => v.extend([Layer::Tcp, Layer::Tls, Layer::Kafka]),
        }
        v
    }

    pub fn host(&self) -> Option<&Host> {
        match self {
            TargetSpec::Dns { .. } => None,
            TargetSpec::Tcp { host, .. }
            | TargetSpec::Tls { host, .. }
            | TargetSpec::Http { host, .. }
            | TargetSpec::Sql { host, .. }
            | TargetSpec::Smb { host, .. }
            | TargetSpec::Postgres { host, .. }
            | TargetSpec::Mysql { host, .. }
            | TargetSpec::Redis { host, .. }
            | TargetSpec::Amqp { host, .. }
            | TargetSpec::Kafka { host, .. } => Some(host),
        }
    }

    /// The name the DNS layer resolves, if any.
    pub fn dns_name(&self) -> Option<&str> {
        match self {
            TargetSpec::Dns { name, .. } => Some(name),
            _ => match self.host() {
                Some(Host::Name(n)) => Some(n),
                _ => None,
            },
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            TargetSpec::Dns { .. } => None,
            TargetSpec::Tcp { port, .. }
            | TargetSpec::Tls { port, .. }
            | TargetSpec::Http { port, .. }
            | TargetSpec::Sql { port, .. }
            | TargetSpec::Smb { port, .. }
            | TargetSpec::Postgres { port, .. }
            | TargetSpec::Mysql { port, .. }
            | TargetSpec::Redis { port, .. }
            | TargetSpec::Amqp { port, .. }
            | TargetSpec::Kafka { port, .. } => Some(*port),
        }
    }
}

impl fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetSpec({self})")
    }
}

/// The target as a report shows it: no password, no SAS signature, no function key.
impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Redis { host, port, tls } => {
                write!(f, "redis{}://{host}:{port}", if *tls { "s" } else { "" })
            }
            TargetSpec::Amqp {
                host,
                port,
                tls,
                websocket,
                entity,
                ..
            } => {
                let s = if *tls { "s" } else { "" };
                match websocket {
                    Some(path) => write!(f, "amqpws{s}://{host}:{port}{path}"),
                    None => {
                        write!(f, "amqp{s}://{host}:{port}")?;
                        match entity {
                            Some(e) => write!(f, "/{e}"),
                            None => Ok(()),
                        }
                    }
                }
            }
            TargetSpec::Kafka { host, port, .. } => write!(f, "kafka://{host}:{port}"),
            TargetSpec::Dns { name, qtype } => {
                write!(f, "dns://{name}")?;
                if *qtype != QueryType::A {
                    write!(f, "?type={}", qtype.as_str())?;
                }
                Ok(())
            }
            TargetSpec::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            TargetSpec::Smb { host, port } => write!(f, "smb://{host}:{port}"),
            TargetSpec::Tls { host, port, sni } => {
                write!(f, "tls://{host}:{port}")?;
                if let Some(s) = sni {
                    write!(f, "?sni={s}")?;
                }
                Ok(())
            }
            TargetSpec::Http { url, .. } => f.write_str(&redact_url(url)),
            TargetSpec::Sql {
                host,
                port,
                database,
                ..
            } => {
                write!(f, "sqlserver://{host}:{port}")?;
                if let Some(db) = database {
                    write!(f, "/{db}")?;
                }
                Ok(())
            }
            TargetSpec::Postgres {
                host,
                port,
                database,
            }
            | TargetSpec::Mysql {
                host,
                port,
                database,
            } => {
                let scheme = match self {
                    TargetSpec::Mysql { .. } => "mysql",
                    _ => "postgres",
                };
                write!(f, "{scheme}://{host}:{port}")?;
                if let Some(db) = database {
                    write!(f, "/{db}")?;
                }
                Ok(())
            }
        }
    }
}
