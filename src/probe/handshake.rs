//! Shared pieces of the service-protocol probes (`postgres`, `mysql`, `redis`): the TLS
//! mode, the credential, the TLS upgrade seam, and deadline-bounded reads.
//!
//! The TLS upgrade is a trait rather than a fixed `ClientConfig` because the TLS layer's
//! certificate evidence is made elsewhere: the engine passes an upgrade that runs its own
//! recording handshake, while tests and simple callers use [`Rustls`]. Each protocol decides
//! *when* to upgrade (after `SSLRequest` for PostgreSQL, after the greeting for MySQL, first
//! thing for Redis); the upgrade decides *how* (roots, name, verification).
//!
//! Depends on nothing in the crate but `Secret`, so the protocol modules stay independent
//! of the report and engine types.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::secret::Secret;

/// Whether and how the probe encrypts. Like libpq's `sslmode`: `Require` encrypts without
/// checking the certificate (the upgrade decides; [`Rustls::require`] does not verify);
/// `VerifyFull` checks chain and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Disable,
    Require,
    VerifyFull,
}

impl TlsMode {
    pub fn enabled(self) -> bool {
        self != TlsMode::Disable
    }
}

/// What the probe logs in with. `Token` is a Microsoft Entra access token (from the
/// managed-identity endpoint) that each protocol sends where a password goes: PostgreSQL
/// and MySQL as the password, Redis as `AUTH <object id> <token>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// Credential-free: prove the protocol answered, then stop.
    #[default]
    None,
    Password(Secret),
    Token(Secret),
}

impl Credential {
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Credential::None => None,
            Credential::Password(s) | Credential::Token(s) => Some(s),
        }
    }

    pub fn is_token(&self) -> bool {
        matches!(self, Credential::Token(_))
    }

    /// For evidence: which kind, never the value.
    pub fn label(&self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::Password(_) => "password",
            Credential::Token(_) => "token",
        }
    }
}

/// What the upgraded connection negotiated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    pub version: Option<String>,
    pub cipher: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeErrorKind {
    /// The peer answered the ClientHello with bytes that are not TLS (a plain-text server).
    NotTls,
    /// The peer closed or reset the connection during the handshake.
    Closed,
    /// The handshake failed: certificate, name, protocol version, alert.
    Handshake,
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeError {
    pub kind: UpgradeErrorKind,
    pub message: String,
}

/// The TLS upgrade seam. The engine implements it over its TLS layer (so the certificate
/// evidence is the TLS layer's); [`Rustls`] is the plain implementation.
pub trait TlsUpgrade<S>: Send {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send;
    fn upgrade(
        self,
        stream: S,
        deadline: Instant,
    ) -> impl Future<Output = Result<(Self::Stream, TlsInfo), UpgradeError>> + Send;
}

/// A rustls upgrade with a ready client configuration and the name to verify / send as SNI.
#[derive(Clone)]
pub struct Rustls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl Rustls {
    /// Chain and name verified against `roots`.
    pub fn verify_full(roots: rustls::RootCertStore, server_name: ServerName<'static>) -> Self {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the aws-lc-rs provider supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Rustls {
            config: Arc::new(config),
            server_name,
        }
    }

    /// Encrypted, certificate not checked (libpq `sslmode=require`).
    pub fn require(server_name: ServerName<'static>) -> Self {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the aws-lc-rs provider supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify))
            .with_no_client_auth();
        Rustls {
            config: Arc::new(config),
            server_name,
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl<S> TlsUpgrade<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    type Stream = tokio_rustls::client::TlsStream<S>;

    async fn upgrade(
        self,
        stream: S,
        deadline: Instant,
    ) -> Result<(Self::Stream, TlsInfo), UpgradeError> {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        let hs = connector.connect(self.server_name, stream);
        match tokio::time::timeout_at(deadline, hs).await {
            Err(_) => Err(UpgradeError {
                kind: UpgradeErrorKind::Timeout,
                message: "the TLS handshake did not finish before the deadline".into(),
            }),
            Ok(Err(e)) => Err(classify_tls_io(&e)),
            Ok(Ok(s)) => {
                let conn = s.get_ref().1;
                let info = TlsInfo {
                    version: conn.protocol_version().map(|v| format!("{v:?}")),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|c| format!("{:?}", c.suite())),
                };
                Ok((s, info))
            }
        }
    }
}

/// Sorts a failed rustls handshake: plain text back, a close, or a real TLS failure.
pub fn classify_tls_io(e: &io::Error) -> UpgradeError {
    use rustls::InvalidMessage;
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let kind = match tls {
        Some(rustls::Error::InvalidMessage(
            InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion,
        )) => UpgradeErrorKind::NotTls,
        Some(_) => UpgradeErrorKind::Handshake,
        None if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ) =>
        {
            UpgradeErrorKind::Closed
        }
        None => UpgradeErrorKind::Handshake,
    };
    UpgradeError {
        kind,
        message: format!("TLS handshake failed: {e}"),
    }
}

#[derive(Debug)]
struct NoVerify;

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a bounded read or write stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoStop {
    Timeout,
    /// EOF or reset before the expected bytes arrived.
    Closed,
    Other,
}

#[derive(Debug)]
pub struct IoFail {
    pub stop: IoStop,
    pub message: String,
}

fn io_fail(e: io::Error) -> IoFail {
    let stop = match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => IoStop::Closed,
        _ => IoStop::Other,
    };
    let message = if e.kind() == io::ErrorKind::UnexpectedEof {
        "the server closed the connection".to_string()
    } else {
        e.to_string()
    };
    IoFail { stop, message }
}

fn timed_out() -> IoFail {
    IoFail {
        stop: IoStop::Timeout,
        message: "no answer before the deadline".into(),
    }
}

pub async fn read_exact<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), IoFail> {
    match tokio::time::timeout_at(deadline, s.read_exact(buf)).await {
        Err(_) => Err(timed_out()),
        Ok(Err(e)) => Err(io_fail(e)),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Reads whatever arrives (at least one byte) into `buf`; 0 means EOF.
pub async fn read_some<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, IoFail> {
    match tokio::time::timeout_at(deadline, s.read(buf)).await {
        Err(_) => Err(timed_out()),
        Ok(Err(e)) => Err(io_fail(e)),
        Ok(Ok(n)) => Ok(n),
    }
}

pub async fn write_all<S: AsyncWrite + Unpin>(
    s: &mut S,
    bytes: &[u8],
    deadline: Instant,
) -> Result<(), IoFail> {
    let w = async {
        s.write_all(bytes).await?;
        s.flush().await
    };
    match tokio::time::timeout_at(deadline, w).await {
        Err(_) => Err(timed_out()),
        Ok(Err(e)) => Err(io_fail(e)),
        Ok(Ok(())) => Ok(()),
    }
}

/// Milliseconds with microsecond precision, as the report writes them.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The first `max` characters of server text, control characters replaced: server
/// messages go into reports verbatim otherwise.
pub fn printable(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}

/// The text between the first pair of `open`/`close` after `marker`, e.g. the host in
/// `for host "10.0.0.4"`.
pub fn quoted_after<'a>(text: &'a str, marker: &str, quote: char) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let start = rest.find(quote)? + 1;
    let len = rest[start..].find(quote)?;
    Some(&rest[start..start + len])
}
