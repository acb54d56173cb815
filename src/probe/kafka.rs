//! Kafka protocol proof for Event Hubs' Kafka endpoint (9093, TLS) and Kafka-compatible
//! brokers, over the connection the TCP layer proved.
//!
//! Without credentials the probe sends `ApiVersions` v0, which brokers answer before
//! authentication (PAAS.md): a size-prefixed answer carrying our correlation id and a
//! table of API key ranges is a Kafka broker, not a firewall appliance or an HTTP
//! server. With credentials it runs `SaslHandshake` v1 and `SaslAuthenticate` (PLAIN
//! with a user and password, or `$ConnectionString` and the connection string as Event
//! Hubs wants it; OAUTHBEARER for a Microsoft Entra token), then `Metadata` v1 for the
//! brokers the cluster advertises (a client reconnects to those names, so they matter
//! for a private endpoint). Wire formats from the Apache Kafka protocol guide
//! (kafka.apache.org/protocol, "ApiVersions", "SaslHandshake", "SaslAuthenticate",
//! "Metadata"; error codes 33, 34, 35, 58 in its error table).
//!
//! Hand-written: four small non-flexible messages. The `kafka-protocol` crate (all
//! messages, every version) would add far more than this module; see the final report.
//!
//! | kind | suggested class | decisive hint content |
//! |---|---|---|
//! | `NotThisProtocol` | `kafka.not_this_protocol` | the answer is not Kafka (HTTP, TLS alert, wrong correlation id): wrong port; Event Hubs' Kafka endpoint is `NAMESPACE.servicebus.windows.net:9093` with TLS |
//! | `TlsRefused` | `kafka.tls_refused` | 9093 is TLS-only; the Kafka endpoint needs the Standard tier or above (*unverified*) |
//! | `Closed` | `kafka.closed` | the broker closed the connection mid-exchange (Event Hubs closes unauthenticated connections that send other requests; an IP filter may close too) |
//! | `Timeout` | `kafka.timeout` | nothing answered before the deadline: a silent listener |
//! | `AuthFailed` | `kafka.auth_failed` | SASL refused (error 58): for Event Hubs the user must be `$ConnectionString` and the password the whole connection string; an Entra token needs audience `https://eventhubs.azure.net` (PAAS.md) |
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
            Credentials::Plain { password, .. } => password.expose(),
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
        match self {
            ErrorKind::NotThisProtocol => "kafka.not_this_protocol",
            ErrorKind::TlsRefused => "kafka.tls_refused",
            ErrorKind::Closed => "kafka.closed",
            ErrorKind::Timeout => "kafka.timeout",
            ErrorKind::AuthFailed => "kafka.auth_failed",
            ErrorKind::TokenExpired => "kafka.token_expired",
            ErrorKind::NetworkRuleRefusal => "kafka.network_rule",
            ErrorKind::Unsupported => "kafka.unsupported",
            ErrorKind::IllegalSaslState => "kafka.illegal_sasl_state",
            ErrorKind::BrokerError => "kafka.broker_error",
            ErrorKind::BadCredentials => "kafka.bad_credentials",
            ErrorKind::ProtocolError => "kafka.protocol_error",
            ErrorKind::Io => "kafka.io_error",
        }
    }

    /// Whether a Kafka broker answered before this failure.
    pub fn answered(self) -> bool {
        !matches!(
            self,
            ErrorKind::NotThisProtocol
                | ErrorKind::TlsRefused
                | ErrorKind::Closed
                | ErrorKind::Timeout
                | ErrorKind::Io
                | ErrorKind::BadCredentials
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: ErrorKind,
    pub phase: Phase,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub phase: Phase,
    pub ms: f64,
}

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

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub evidence: Evidence,
    pub error: Option<Failure>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

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

mod wire;
use wire::{Reader, request};

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
                    "deadline reached during the TLS handshake".into(),
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
    let error = run(&mut c, opts).await.err().map(|f| Failure {
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

struct Conn<'a> {
    io: Box<dyn amqp::IoStream + 'a>,
    deadline: Instant,
    ev: Evidence,
    phase: Phase,
    started: Instant,
    correlation: i32,
    client_id: String,
}

impl Conn<'_> {
    fn begin(&mut self, phase: Phase) {
        self.phase = phase;
        self.started = Instant::now();
    }

    fn done(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.ev.timings.push(Timing {
            phase: self.phase,
            ms: (ms * 1000.0).round() / 1000.0,
        });
    }

    /// Sends one request and returns the response body after the correlation id.
    async fn call(&mut self, key: i16, version: i16, body: &[u8]) -> Result<Vec<u8>, Fail> {
        self.correlation += 1;
        let corr = self.correlation;
        let bytes = request(key, version, corr, &self.client_id, body);
        let io = &mut self.io;
        let sent = tokio::time::timeout_at(self.deadline, async {
            io.write_all(&bytes).await?;
            io.flush().await
        })
        .await;
        match sent {
            Err(_) => return fail(ErrorKind::Timeout, "deadline reached while sending"),
            Ok(Err(e)) => return io_fail(e),
            Ok(Ok(())) => {}
        }
        let mut size = [0u8; 4];
        let mut n = 0;
        while n < 4 {
            let io = &mut self.io;
            let got = match tokio::time::timeout_at(self.deadline, io.read(&mut size[n..])).await {
                Err(_) if n == 0 => {
                    return fail(
                        ErrorKind::Timeout,
                        "nothing answered the Kafka request before the deadline",
                    );
                }
                Err(_) => return fail(ErrorKind::Timeout, "the answer stopped before its size"),
                Ok(Err(e)) => return io_fail(e),
                Ok(Ok(g)) => g,
            };
            if got == 0 {
                return match n {
                    0 => fail(
                        ErrorKind::Closed,
                        "the server closed the connection without answering",
                    ),
                    _ => fail(
                        ErrorKind::NotThisProtocol,
                        format!("the server sent {} and closed", amqp::printable(&size[..n])),
                    ),
                };
            }
            n += got;
            // A Kafka answer this small starts with a zero byte; anything else is not Kafka.
            if size[0] != 0 {
                return fail(ErrorKind::NotThisProtocol, foreign(&size[..n]));
            }
        }
        let len = u32::from_be_bytes(size) as usize;
        if !(4..=MAX_RESPONSE).contains(&len) {
            return fail(
                ErrorKind::NotThisProtocol,
                format!("answer size {len} is not a Kafka response"),
            );
        }
        let mut buf = vec![0u8; len];
        let io = &mut self.io;
        match tokio::time::timeout_at(self.deadline, io.read_exact(&mut buf)).await {
            Err(_) => return fail(ErrorKind::Timeout, "deadline reached inside the answer"),
            Ok(Err(e)) => return io_fail(e),
            Ok(Ok(_)) => {}
        }
        let got = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if got != corr {
            return fail(
                ErrorKind::NotThisProtocol,
                format!("answer carries correlation id {got}, not {corr}"),
            );
        }
        buf.drain(..4);
        Ok(buf)
    }

    fn broker_error(&mut self, code: i16) {
        if code != 0 {
            self.ev.broker_error_codes.push(code);
        }
    }
}

fn foreign(b: &[u8]) -> String {
    let what = if b.starts_with(b"HTT") || b.starts_with(b"H") {
        "an HTTP server answered"
    } else if b.first() == Some(&0x15) {
        "a TLS server answered with an alert (this port expects TLS first)"
    } else {
        "something other than Kafka answered"
    };
    format!("{what}: {}", amqp::printable(b))
}

fn io_fail<T>(e: std::io::Error) -> Result<T, Fail> {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => fail(
            ErrorKind::Closed,
            format!("the server closed the connection ({e})"),
        ),
        _ => fail(ErrorKind::Io, e.to_string()),
    }
}

fn decode_err(what: &str) -> impl Fn(wire::Short) -> Fail + '_ {
    move |_| Fail {
        kind: ErrorKind::ProtocolError,
        message: format!("the {what} answer does not decode"),
    }
}

async fn run(c: &mut Conn<'_>, opts: &Options) -> Result<(), Fail> {
    c.begin(Phase::ApiVersions);
    let body = c.call(API_VERSIONS, 0, &[]).await?;
    let mut r = Reader::new(&body);
    let err = r.i16().map_err(decode_err("ApiVersions"))?;
    c.ev.api_versions_error = Some(err);
    c.broker_error(err);
    let n = r.array_len().map_err(decode_err("ApiVersions"))?;
    for _ in 0..n {
        let key = r.i16().map_err(decode_err("ApiVersions"))?;
        let min = r.i16().map_err(decode_err("ApiVersions"))?;
        let max = r.i16().map_err(decode_err("ApiVersions"))?;
        c.ev.apis.push(ApiRange { key, min, max });
    }
    let keys = c.ev.apis.iter().map(|a| a.key);
    c.ev.api_key_range = keys.clone().min().zip(keys.max());
    if err != 0 {
        return fail(
            classify(err, ""),
            format!("ApiVersions answered error {err}"),
        );
    }
    c.done();

    let (mechanism, auth) = match &opts.credentials {
        Credentials::None => return Ok(()),
        Credentials::Plain { user, password } => ("PLAIN", plain(user, password.expose())),
        Credentials::ConnectionString(s) => ("PLAIN", plain("$ConnectionString", s.expose())),
        Credentials::Bearer(t) => (
            "OAUTHBEARER",
            format!("n,,\x01auth=Bearer {}\x01\x01", t.expose()).into_bytes(),
        ),
    };
    if auth.len() < 8 {
        return fail(ErrorKind::BadCredentials, "the credential is empty");
    }
    c.ev.mechanism = Some(mechanism.into());

    c.begin(Phase::SaslHandshake);
    if c.ev.api(API_SASL_HANDSHAKE).is_none_or(|a| a.max < 1) {
        return fail(
            ErrorKind::Unsupported,
            "the broker does not list SaslHandshake v1",
        );
    }
    let mut b = Vec::new();
    wire::string(&mut b, mechanism);
    let body = c.call(API_SASL_HANDSHAKE, 1, &b).await?;
    let mut r = Reader::new(&body);
    let err = r.i16().map_err(decode_err("SaslHandshake"))?;
    c.broker_error(err);
    let n = r.array_len().map_err(decode_err("SaslHandshake"))?;
    for _ in 0..n {
        let m = r.string().map_err(decode_err("SaslHandshake"))?;
        c.ev.mechanisms.push(m.unwrap_or_default());
    }
    if err != 0 {
        return fail(
            classify(err, ""),
            format!(
                "SaslHandshake {mechanism} refused: error {err} (enabled: {})",
                c.ev.mechanisms.join(", ")
            ),
        );
    }
    c.done();

    c.begin(Phase::SaslAuthenticate);
    let v = match c.ev.api(API_SASL_AUTHENTICATE) {
        Some(a) if a.max >= 1 && a.min <= 1 => 1,
        Some(a) if a.min == 0 => 0,
        _ => {
            return fail(
                ErrorKind::Unsupported,
                "the broker does not list SaslAuthenticate v0 or v1",
            );
        }
    };
    let mut b = Vec::new();
    wire::bytes(&mut b, &auth);
    let body = c.call(API_SASL_AUTHENTICATE, v, &b).await?;
    let mut r = Reader::new(&body);
    let err = r.i16().map_err(decode_err("SaslAuthenticate"))?;
    let msg = r.string().map_err(decode_err("SaslAuthenticate"))?;
    c.broker_error(err);
    c.ev.sasl_error_message = msg.clone();
    if err != 0 {
        let m = msg.unwrap_or_default();
        return fail(
            classify(err, &m),
            format!("SaslAuthenticate {mechanism} refused: error {err}: {m}"),
        );
    }
    let _ = r.bytes().map_err(decode_err("SaslAuthenticate"))?;
    if v >= 1 {
        c.ev.session_lifetime_ms = r.i64().ok();
    }
    c.done();

    c.begin(Phase::Metadata);
    let body = c.call(API_METADATA, 1, &0i32.to_be_bytes()).await?;
    let mut r = Reader::new(&body);
    let n = r.array_len().map_err(decode_err("Metadata"))?;
    for _ in 0..n {
        let _node = r.i32().map_err(decode_err("Metadata"))?;
        let host = r
            .string()
            .map_err(decode_err("Metadata"))?
            .unwrap_or_default();
        let port = r.i32().map_err(decode_err("Metadata"))?;
        let _rack = r.string().map_err(decode_err("Metadata"))?;
        c.ev.brokers.push(format!("{host}:{port}"));
    }
    c.ev.controller_id = r.i32().ok();
    c.done();
    Ok(())
}

fn plain(user: &str, password: &str) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend(user.as_bytes());
    v.push(0);
    v.extend(password.as_bytes());
    v
}

#[cfg(test)]
mod tests;
