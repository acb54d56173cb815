//! Kafka protocol proof for Event Hubs' Kafka endpoint (9093, TLS) and Kafka-compatible
//! brokers, over the connection the TCP layer proved.
//!
//! Without credentials the probe sends `ApiVersions` v0, which brokers answer before
//! authentication (docs/azure-facts.md): a size-prefixed answer carrying our correlation id and a
//! table of API key ranges is a Kafka broker, not a firewall appliance or an HTTP
//! server. With credentials it runs `SaslHandshake` v1 and `SaslAuthenticate` (PLAIN
//! with a user and password, or `$ConnectionString` and the connection string as Event
//! Hubs wants it; OAUTHBEARER for a Microsoft Entra token, the app's managed identity's
//! from the layer; SCRAM-SHA-256/512 for other brokers, `scram`), then `Metadata` v1 for the
//! brokers the cluster advertises (a client reconnects to those names, so they matter
//! for a private endpoint). Wire formats from the Apache Kafka protocol guide
//! (kafka.apache.org/protocol, "ApiVersions", "SaslHandshake", "SaslAuthenticate",
//! "Metadata"; error codes 33, 34, 35, 58 in its error table).
//!
//! Hand-written: four small non-flexible messages, and a foreign answer is judged from its
//! first bytes before any decoder sees it. The `kafka-protocol` crate would cost about
//! 104 KB (docs/protocols.md), so size is not the reason: switch to it if the probe ever
//! needs more APIs or flexible versions.
//!
//! | kind | suggested class | decisive hint content |
//! |---|---|---|
//! | `NotThisProtocol` | `kafka.not_this_protocol` | the answer is not Kafka (HTTP, TLS alert, wrong correlation id): wrong port; Event Hubs' Kafka endpoint is `NAMESPACE.servicebus.windows.net:9093` with TLS |
//! | `TlsRefused` | `kafka.tls_refused` | 9093 is TLS-only; the Kafka endpoint needs the Standard tier or above (*unverified*) |
//! | `Closed` | `kafka.closed` | the broker closed the connection mid-exchange (Event Hubs closes unauthenticated connections that send other requests; an IP filter may close too) |
//! | `Timeout` | `kafka.timeout` | nothing answered before the deadline: a silent listener |
//! | `AuthFailed` | `kafka.auth_failed` | SASL refused (error 58): for Event Hubs the user must be `$ConnectionString` and the password the whole connection string; an Entra token needs audience `https://eventhubs.azure.net` (docs/azure-facts.md) |
//! | `TokenExpired` | `kafka.token_expired` | the OAUTHBEARER token expired |
//! | `NetworkRuleRefusal` | `kafka.network_rule` | "Ip has been prevented to connect to the endpoint": the namespace's network rules refused this source (*unverified* for the Kafka endpoint) |
//! | `Unsupported` | `kafka.unsupported` | the broker lacks the mechanism (error 33) or the API version (error 35) the login needs |
//! | `IllegalSaslState` | `kafka.illegal_sasl_state` | error 34: the broker expected another SASL step |
//! | `BrokerError` | `kafka.broker_error` | another Kafka error code (recorded) |
//! | `BadCredentials` | `kafka.bad_credentials` | the credential is unusable before sending (empty) |
//! | `ProtocolError` | `kafka.protocol_error` | a Kafka answer that does not decode |
//! | `Io` | `kafka.io_error` | another I/O error |
//!
//! Secrets never enter evidence or messages: broker texts pass through `redact`.

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::probe::amqp::{self, Tls};
use crate::secret::Secret;

const MAX_RESPONSE: usize = 1 << 20;
pub const API_PRODUCE: i16 = 0;
pub const API_METADATA: i16 = 3;
pub const API_SASL_HANDSHAKE: i16 = 17;
pub const API_VERSIONS: i16 = 18;
pub const API_SASL_AUTHENTICATE: i16 = 36;

#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    Plain {
        user: String,
        password: Secret,
    },
    /// Event Hubs: user `$ConnectionString`, password the connection string.
    ConnectionString(Secret),
    /// OAUTHBEARER with a Microsoft Entra token.
    Bearer(Secret),
    /// SASL SCRAM-SHA-256/512 with a user and password (Kafka brokers, Tansu; Event
    /// Hubs takes PLAIN and OAUTHBEARER only).
    Scram {
        mechanism: Scram,
        user: String,
        password: Secret,
    },
}

#[derive(Clone, Default)]
pub struct Options {
    pub tls: Option<Tls>,
    pub credentials: Credentials,
    /// Sent as the request header's client id; default `routeproof`.
    pub client_id: Option<String>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("tls", &self.tls.is_some())
            .field("credentials", &self.credentials)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl Options {
    fn secrets(&self) -> Vec<String> {
        let s = match &self.credentials {
            Credentials::None => return Vec::new(),
            Credentials::Plain { password, .. } | Credentials::Scram { password, .. } => {
                password.expose()
            }
            Credentials::ConnectionString(s) | Credentials::Bearer(s) => s.expose(),
        };
        let mut v = vec![s.to_string()];
        if let Credentials::ConnectionString(cs) = &self.credentials {
            v.extend(
                amqp::ConnString::parse(cs.expose())
                    .key
                    .map(|k| k.expose().to_string()),
            );
        }
        v.retain(|s| s.len() >= 3);
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Tls,
    ApiVersions,
    SaslHandshake,
    SaslAuthenticate,
    Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotThisProtocol,
    TlsRefused,
    Closed,
    Timeout,
    AuthFailed,
    TokenExpired,
    NetworkRuleRefusal,
    Unsupported,
    IllegalSaslState,
    BrokerError,
    BadCredentials,
    ProtocolError,
    Io,
}

impl ErrorKind {
    pub fn class(self) -> &'static str {
        layer::class(self).as_str()
    }

    /// Whether a Kafka broker answered before this failure.
    pub fn answered(self) -> bool {
        layer::class(self).layer_answered()
    }
}

pub type Failure = crate::probe::step::PhaseFailure<ErrorKind, Phase>;
pub type Timing = crate::probe::step::Timing<Phase>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApiRange {
    pub key: i16,
    pub min: i16,
    pub max: i16,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    /// `tcp` or `tls`.
    pub transport: String,
    pub tls_version: Option<String>,
    /// ApiVersions' error code (0 when the broker answered normally).
    pub api_versions_error: Option<i16>,
    /// Lowest and highest API key the broker lists.
    pub api_key_range: Option<(i16, i16)>,
    pub apis: Vec<ApiRange>,
    pub mechanisms: Vec<String>,
    pub mechanism: Option<String>,
    /// Every non-zero Kafka error code the broker returned, in order.
    pub broker_error_codes: Vec<i16>,
    pub sasl_error_message: Option<String>,
    pub session_lifetime_ms: Option<i64>,
    /// `host:port` of each broker `Metadata` advertises.
    pub brokers: Vec<String>,
    pub controller_id: Option<i32>,
    pub timings: Vec<Timing>,
}

impl Evidence {
    /// The broker's version range for `key`.
    pub fn api(&self, key: i16) -> Option<ApiRange> {
        self.apis.iter().copied().find(|a| a.key == key)
    }
}

pub type Outcome = crate::probe::step::Outcome<Evidence, ErrorKind, Phase>;

struct Fail {
    kind: ErrorKind,
    message: String,
}

fn fail<T>(kind: ErrorKind, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        kind,
        message: message.into(),
    })
}

/// A Kafka error code → kind (the protocol guide's error table).
pub fn classify(code: i16, message: &str) -> ErrorKind {
    if message.contains(amqp::NETWORK_RULE_TEXT) {
        return ErrorKind::NetworkRuleRefusal;
    }
    match code {
        58 if message.to_ascii_lowercase().contains("expired") => ErrorKind::TokenExpired,
        58 => ErrorKind::AuthFailed,
        33 | 35 => ErrorKind::Unsupported,
        34 => ErrorKind::IllegalSaslState,
        _ => ErrorKind::BrokerError,
    }
}

mod layer;
mod scram;
mod session;
mod wire;
pub use layer::{KafkaStep, class, run, tls_refused};
pub use scram::Scram;
use session::{Conn, run as session};

/// Runs the probe on `stream` until `deadline`.
pub async fn probe<S>(stream: S, opts: &Options, deadline: Instant) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let secrets = opts.secrets();
    let mut ev = Evidence {
        transport: "tcp".into(),
        ..Evidence::default()
    };
    let mut io: Box<dyn amqp::IoStream + '_> = Box::new(stream);
    if let Some(tls) = &opts.tls {
        let t0 = Instant::now();
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let tls_fail = |ev: Evidence, kind, message: String| Outcome {
            evidence: ev,
            error: Some(Failure {
                kind,
                phase: Phase::Tls,
                message,
            }),
        };
        match tokio::time::timeout_at(deadline, connector.connect(tls.server_name.clone(), io))
            .await
        {
            Ok(Ok(s)) => {
                ev.tls_version = s.get_ref().1.protocol_version().map(|v| format!("{v:?}"));
                ev.transport = "tls".into();
                ev.timings.push(Timing {
                    phase: Phase::Tls,
                    ms: (t0.elapsed().as_secs_f64() * 1e6).round() / 1000.0,
                });
                io = Box::new(s);
            }
            Ok(Err(e)) => {
                return tls_fail(
                    ev,
                    ErrorKind::TlsRefused,
                    format!("TLS handshake failed: {e}"),
                );
            }
            Err(_) => {
                return tls_fail(
                    ev,
                    ErrorKind::Timeout,
                    "deadline reached during the TLS handshake (a plain-text server may be waiting for more bytes: is this port TLS?)".into(),
                );
            }
        }
    }
    let mut c = Conn {
        io,
        deadline,
        ev,
        phase: Phase::ApiVersions,
        started: Instant::now(),
        correlation: 0,
        client_id: opts
            .client_id
            .clone()
            .unwrap_or_else(|| "routeproof".into()),
    };
    let error = session(&mut c, opts).await.err().map(|f| Failure {
        kind: f.kind,
        phase: c.phase,
        message: amqp::redact(&f.message, &secrets),
    });
    if let Some(m) = c.ev.sasl_error_message.take() {
        c.ev.sasl_error_message = Some(amqp::redact(&m, &secrets));
    }
    Outcome {
        evidence: c.ev,
        error,
    }
}

#[cfg(test)]
mod tests;
