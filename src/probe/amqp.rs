//! AMQP 1.0 protocol proof for Service Bus and Event Hubs, over the connection the TCP
//! layer proved: plain, TLS (5671) or WebSockets (443, `/$servicebus/websocket`,
//! see `ws`).
//!
//! Without credentials the probe sends the SASL protocol header `AMQP 3.1.0.0`; the
//! service echoes it and lists its SASL mechanisms (Service Bus: `MSSBCBS`, `PLAIN`,
//! `ANONYMOUS`, `EXTERNAL`). An echo plus a well-formed `sasl-mechanisms` frame is
//! something only an AMQP 1.0 server sends: a firewall appliance or an HTTP server
//! cannot produce it. With credentials it logs in (SASL PLAIN with a user and password
//! or a SAS key name and key; ANONYMOUS plus a CBS `put-token` for a bearer token or a
//! SAS token), opens the connection (records the container id and frame size) and
//! closes it. Hand-written: the exchanges are a few frames, and fe2o3-amqp would add
//! 641 KB and its own connection event loop (measured in docs/protocols.md).
//!
//! | kind | suggested class | decisive hint content |
//! |---|---|---|
//! | `NotThisProtocol` | `amqp.not_this_protocol` | something else answered (HTTP, TLS alert, banner): wrong port or a device in the path; Service Bus/Event Hubs listen on 5671 (TLS) and 443 (WebSockets) |
//! | `OtherAmqpVersion` | `amqp.unsupported_version` | an AMQP server, but not AMQP 1.0 with SASL (e.g. RabbitMQ's 0-9-1 port, or SASL disabled) |
//! | `TlsRefused` | `amqp.tls_refused` | Service Bus/Event Hubs require TLS first on 5671; plain 5672 is forced to TLS (docs/azure-facts.md) |
//! | `WebSocketRefused` | `amqp.websocket_refused` | the 443 endpoint did not upgrade `/$servicebus/websocket` with subprotocol `AMQPWSB10`: a proxy or a wrong host name (a private endpoint answers on 443 too) |
//! | `Closed` | `amqp.closed` | the server closed mid-handshake: an idle-timeout, an IP filter or a load balancer resetting; try 443 (WebSockets) if 5671 is blocked outbound |
//! | `Timeout` | `amqp.timeout` | nothing answered the header before the deadline: a silent listener (firewall appliance, a server of another protocol waiting for its own request) |
//! | `AuthFailed` | `amqp.auth_failed` | SAS key name/key or token refused (`sasl-outcome` auth, `amqp:unauthorized-access`, CBS 401); for Entra, the token's audience must be `https://servicebus.azure.net` / `https://eventhubs.azure.net` (docs/azure-facts.md) |
//! | `TokenExpired` | `amqp.token_expired` | the CBS token expired: fetch a new one from the identity endpoint |
//! | `Forbidden` | `amqp.forbidden` | authenticated but lacking a claim/role (`Listen`/`Send`/`Manage`, or an Azure Service Bus/Event Hubs Data role) — *unverified* text |
//! | `NetworkRuleRefusal` | `amqp.network_rule` | "Ip has been prevented to connect to the endpoint": the namespace's IP firewall / public network access refused this source; a private endpoint needs Premium for Service Bus (docs/azure-facts.md), Event Hubs Standard or above (*unverified*) |
//! | `Unsupported` | `amqp.unsupported` | the server does not offer the mechanism the credential needs (PLAIN, ANONYMOUS/MSSBCBS for CBS) |
//! | `RemoteError` | `amqp.remote_error` | the server closed with another AMQP error (e.g. `amqp:not-found`: namespace or entity missing) |
//! | `BadCredentials` | `amqp.bad_credentials` | the connection string lacks what the login needs (SharedAccessKeyName + SharedAccessKey, or SharedAccessSignature) |
//! | `ProtocolError` | `amqp.protocol_error` | malformed frames after a correct echo |
//! | `Io` | `amqp.io_error` | another I/O error on the proven connection |
//!
//! Credential-free, the IP filter cannot show: Service Bus lists its mechanisms before
//! it knows who is asking; the network-rule text comes with `open`/CBS (*unverified*).
//! Secrets (passwords, keys, tokens, connection strings) never enter the evidence or a
//! message: remote texts are passed through `redact` with every secret of the options.

pub mod cbs;
pub mod codec;
mod conn;
mod layer;
mod session;
pub mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::secret::Secret;

pub const SASL_HEADER: [u8; 8] = *b"AMQP\x03\x01\x00\x00";
pub const AMQP_HEADER: [u8; 8] = *b"AMQP\x00\x01\x00\x00";
/// The largest frame the probe accepts from a server (it asks for 64 KiB).
const MAX_FRAME: u32 = 1 << 20;
/// Azure's text when a namespace's network rules refuse the client (docs/azure-facts.md).
pub const NETWORK_RULE_TEXT: &str = "Ip has been prevented to connect to the endpoint";

/// TLS to run before AMQP, when the caller has not already wrapped the stream.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls::pki_types::ServerName<'static>,
}

/// AMQP over WebSockets (RFC 6455 binary frames, subprotocol `AMQPWSB10`).
#[derive(Debug, Clone)]
pub struct WebSocket {
    /// Request path; Service Bus and Event Hubs use `/$servicebus/websocket`.
    pub path: String,
}

impl Default for WebSocket {
    fn default() -> Self {
        WebSocket {
            path: "/$servicebus/websocket".into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// Stop after `sasl-mechanisms`.
    #[default]
    None,
    /// SASL PLAIN with a user and password (RabbitMQ and other brokers).
    Plain { user: String, password: Secret },
    /// SASL PLAIN with a SAS policy name and key, which Service Bus accepts.
    SasKey { key_name: String, key: Secret },
    /// A Service Bus / Event Hubs connection string: its SharedAccessKeyName + key go
    /// through SASL PLAIN, a SharedAccessSignature through CBS.
    ConnectionString(Secret),
    /// A Microsoft Entra token, sent with CBS `put-token` (type `jwt`).
    Bearer(Secret),
}

#[derive(Clone)]
pub struct Options {
    /// The namespace host (`ns.servicebus.windows.net`): sasl-init and open `hostname`,
    /// the WebSocket `Host`, and the default CBS audience.
    pub hostname: String,
    pub tls: Option<Tls>,
    pub websocket: Option<WebSocket>,
    pub credentials: Credentials,
    /// Entity (queue, topic, event hub) for the CBS audience; the connection string's
    /// `EntityPath` wins when it has one.
    pub entity: Option<String>,
    /// The CBS `name` (audience) to put a token for; default `amqp://HOST/ENTITY`.
    pub cbs_audience: Option<String>,
}

impl Options {
    pub fn new(hostname: impl Into<String>) -> Self {
        Options {
            hostname: hostname.into(),
            tls: None,
            websocket: None,
            credentials: Credentials::None,
            entity: None,
            cbs_audience: None,
        }
    }

    fn secrets(&self) -> Vec<String> {
        let mut v = Vec::new();
        match &self.credentials {
            Credentials::None => {}
            Credentials::Plain { password, .. } => v.push(password.expose().to_string()),
            Credentials::SasKey { key, .. } => v.push(key.expose().to_string()),
            Credentials::ConnectionString(s) => {
                v.push(s.expose().to_string());
                let cs = ConnString::parse(s.expose());
                v.extend(cs.key.map(|k| k.expose().to_string()));
                v.extend(cs.signature.map(|k| k.expose().to_string()));
            }
            Credentials::Bearer(t) => v.push(t.expose().to_string()),
        }
        v.retain(|s| s.len() >= 3);
        v
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("hostname", &self.hostname)
            .field("tls", &self.tls.is_some())
            .field("websocket", &self.websocket)
            .field("credentials", &self.credentials)
            .field("entity", &self.entity)
            .field("cbs_audience", &self.cbs_audience)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Tls,
    WebSocket,
    SaslHeader,
    SaslMechanisms,
    SaslOutcome,
    AmqpHeader,
    Open,
    Cbs,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotThisProtocol,
    OtherAmqpVersion,
    TlsRefused,
    WebSocketRefused,
    Closed,
    Timeout,
    AuthFailed,
    TokenExpired,
    Forbidden,
    NetworkRuleRefusal,
    Unsupported,
    RemoteError,
    BadCredentials,
    ProtocolError,
    Io,
}

impl ErrorKind {
    /// The failure class this kind suggests (see the module table).
    pub fn class(self) -> &'static str {
        layer::class(self).as_str()
    }

    /// Whether an AMQP server answered before this failure (the layer was reached).
    pub fn answered(self) -> bool {
        layer::class(self).layer_answered()
    }
}

pub type Failure = crate::probe::step::PhaseFailure<ErrorKind, Phase>;
pub type Timing = crate::probe::step::Timing<Phase>;

/// An AMQP error a server sent (`close`, `end`, `detach` or `begin`/`attach` refusals).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteError {
    pub condition: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    /// `tcp`, `tls`, `websocket` or `websocket+tls`.
    pub transport: String,
    pub tls_version: Option<String>,
    pub websocket: Option<ws::WsEvidence>,
    /// The server's answer to the SASL header, as text (`AMQP 3.1.0.0` when echoed).
    pub header: Option<String>,
    pub header_echoed: bool,
    pub mechanisms: Vec<String>,
    pub mechanism: Option<String>,
    pub sasl_outcome: Option<u8>,
    pub amqp_header_echoed: bool,
    pub container_id: Option<String>,
    /// The server's max-frame-size; `None` when unset (the AMQP default, 4 GiB).
    pub max_frame_size: Option<u64>,
    pub channel_max: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    /// String-valued `open` properties (product, version, ...).
    pub properties: BTreeMap<String, String>,
    pub cbs: Option<cbs::CbsEvidence>,
    pub remote_error: Option<RemoteError>,
    pub timings: Vec<Timing>,
}

pub type Outcome = crate::probe::step::Outcome<Evidence, ErrorKind, Phase>;

/// The parts of a Service Bus / Event Hubs connection string the probe uses.
#[derive(Debug, Default)]
pub struct ConnString {
    pub endpoint: Option<String>,
    pub key_name: Option<String>,
    pub key: Option<Secret>,
    pub signature: Option<Secret>,
    pub entity: Option<String>,
}

impl ConnString {
    pub fn parse(s: &str) -> ConnString {
        let mut c = ConnString::default();
        for part in s.split(';') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "endpoint" => c.endpoint = Some(v),
                "sharedaccesskeyname" => c.key_name = Some(v),
                "sharedaccesskey" => c.key = Some(Secret::new(v)),
                "sharedaccesssignature" => c.signature = Some(Secret::new(v)),
                "entitypath" => c.entity = Some(v),
                _ => {}
            }
        }
        c
    }
}

/// Replaces every secret in `text` with the mask, and caps its length.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut t: String = text.chars().take(400).collect();
    for s in secrets {
        t = t.replace(s.as_str(), crate::secret::MASK);
    }
    t
}

pub(crate) trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> IoStream for T {}

pub(crate) struct Fail {
    pub kind: ErrorKind,
    pub message: String,
}

pub(crate) fn fail<T>(kind: ErrorKind, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        kind,
        message: message.into(),
    })
}

use conn::Conn;
pub(crate) use conn::printable;
pub use layer::{AmqpStep, class, run, tls_refused};
pub use session::classify;
use session::session;
pub(crate) use session::{expect, frame_name};

/// Runs the probe on `stream` (the connection the TCP layer proved) until `deadline`.
pub async fn probe<S>(stream: S, opts: &Options, deadline: Instant) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let secrets = opts.secrets();
    let mut ev = Evidence::default();
    let mut phase = Phase::SaslHeader;
    let result = transport(stream, opts, deadline, &mut ev, &mut phase).await;
    let io = match result {
        Ok(io) => io,
        Err(f) => {
            return Outcome {
                evidence: ev,
                error: Some(Failure {
                    kind: f.kind,
                    phase,
                    message: redact(&f.message, &secrets),
                }),
            };
        }
    };
    let mut c = Conn {
        io,
        deadline,
        ev,
        phase: Phase::SaslHeader,
        started: Instant::now(),
        secrets,
    };
    let error = session(&mut c, opts).await.err().map(|f| Failure {
        kind: f.kind,
        phase: c.phase,
        message: c.redact(&f.message),
    });
    Outcome {
        evidence: c.ev,
        error,
    }
}

/// TLS and WebSockets under AMQP, as the options ask; returns the byte stream AMQP runs on.
async fn transport<'a, S>(
    stream: S,
    opts: &Options,
    deadline: Instant,
    ev: &mut Evidence,
    phase: &mut Phase,
) -> Result<Box<dyn IoStream + 'a>, Fail>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'a,
{
    let mut io: Box<dyn IoStream + 'a> = Box::new(stream);
    ev.transport = "tcp".into();
    if let Some(tls) = &opts.tls {
        *phase = Phase::Tls;
        let t0 = Instant::now();
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let s = match tokio::time::timeout_at(
            deadline,
            connector.connect(tls.server_name.clone(), io),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return fail(ErrorKind::TlsRefused, format!("TLS handshake failed: {e}"));
            }
            Err(_) => {
                return fail(
                    ErrorKind::Timeout,
                    "deadline reached during the TLS handshake (a plain-text server may be waiting for more bytes: is this port TLS?)",
                );
            }
        };
        ev.tls_version = s.get_ref().1.protocol_version().map(|v| format!("{v:?}"));
        ev.timings.push(timing(Phase::Tls, t0));
        ev.transport = "tls".into();
        io = Box::new(s);
    }
    if let Some(ws) = &opts.websocket {
        *phase = Phase::WebSocket;
        let t0 = Instant::now();
        let (s, wev) = ws::connect(io, &opts.hostname, &ws.path, deadline)
            .await
            .map_err(|e| Fail {
                kind: e.kind,
                message: e.message,
            })?;
        ev.websocket = Some(wev);
        ev.timings.push(timing(Phase::WebSocket, t0));
        ev.transport = (if opts.tls.is_some() {
            "websocket+tls"
        } else {
            "websocket"
        })
        .into();
        io = Box::new(s);
    }
    Ok(io)
}

fn timing(phase: Phase, t0: Instant) -> Timing {
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    Timing {
        phase,
        ms: (ms * 1000.0).round() / 1000.0,
    }
}

#[cfg(test)]
mod tests;
