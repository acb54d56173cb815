//! TLS layer: a rustls handshake over the stream the TCP layer connected, so the
//! certificate in the report is the one served at the address DNS reported.
//!
//! The verifier wraps webpki's and records the presented chain and its verdict before
//! deciding, so a failed handshake still carries the chain (the evidence an engineer
//! needs to see *which* certificate was wrong), and `insecure = true` can report what
//! would have failed without failing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::step::Step;
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::report::{CertInfo, Evidence, FailureClass, Layer, LayerResult, TlsEvidence, ms};

/// The TLS layer's input; it runs over the stream the layer below hands on and hands
/// on the TLS stream.
pub struct TlsStep<'a> {
    /// The name to verify and send as SNI; an IP address sends no SNI and is checked
    /// against the certificate's IP SANs (which is why calling a private endpoint by
    /// IP fails: its certificate names the public FQDN).
    pub server_name: ServerName<'static>,
    pub roots: Arc<RootCertStore>,
    pub insecure: bool,
    pub alpn: Vec<Vec<u8>>,
    pub timeout: Duration,
    pub cert_days_left: Option<u32>,
    pub ctx: &'a Context,
}

/// What the verifier saw, read back after the handshake.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    error: Option<rustls::Error>,
}

#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    insecure: bool,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut res =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        if matches!(
            res,
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ) && let Some(wide) = super::trust::widened(&self.roots)
        {
            // Not in the bundle: the certificate directory too, as OpenSSL looks it up.
            res = wide.verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        seen.error = res.as_ref().err().cloned();
        if self.insecure {
            Ok(ServerCertVerified::assertion())
        } else {
            res
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The handshake over any stream: a TCP socket, or TDS 7.x's PRELOGIN framing.
pub async fn run<S>(stream: S, plan: TlsStep<'_>, budget: &Budget) -> Step<TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let start = Instant::now();
    let sni = match &plan.server_name {
        ServerName::DnsName(d) => Some(d.as_ref().to_string()),
        _ => None,
    };
    let mut ev = TlsEvidence {
        sni: sni.clone(),
        ..Default::default()
    };
    let fail = |class, message: String, ev: TlsEvidence, elapsed| {
        let mut ctx = plan.ctx.clone();
        ctx.tls_name = Some(plan.server_name.to_str().into_owned());
        Step::last(LayerResult {
            layer: Layer::Tls,
            ok: false,
            start_ms: 0.0,
            duration_ms: ms(elapsed),
            error: Some(diagnose::failure(Some(Layer::Tls), class, message, &ctx)),
            evidence: Evidence::Tls(ev),
        })
    };

    let inner = match WebPkiServerVerifier::builder(Arc::clone(&plan.roots)).build() {
        Ok(v) => v,
        Err(e) => {
            return fail(
                FailureClass::TlsUntrusted,
                format!(
                    "no usable trust anchors: {e} (set ca_file, or install the system CA bundle)"
                ),
                ev,
                start.elapsed(),
            );
        }
    };
    let verifier = Arc::new(Recording {
        inner,
        roots: Arc::clone(&plan.roots),
        insecure: plan.insecure,
        seen: Mutex::new(Seen::default()),
    });
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = plan.alpn.clone();
    // SNI is sent for names only; rustls never sends an IP as SNI.
    let connector = TlsConnector::from(Arc::new(config));

    let (limit, cut) = budget.limit(plan.timeout);
    let res =
        tokio::time::timeout(limit, connector.connect(plan.server_name.clone(), stream)).await;
    let elapsed = start.elapsed();
    let seen = std::mem::take(&mut *verifier.seen.lock().unwrap_or_else(|p| p.into_inner()));
    ev.chain = seen.chain.iter().map(describe).collect();
    ev.days_left = earliest_days_left(&ev.chain);

    let stream = match res {
        Err(_) if cut => {
            return fail(
                FailureClass::Deadline,
                "run deadline reached during the TLS handshake".into(),
                ev,
                elapsed,
            );
        }
        Err(_) => {
            return fail(
                FailureClass::TlsTimeout,
                format!(
                    "no TLS handshake within {} (the server accepted TCP but never answered the ClientHello)",
                    humantime::format_duration(limit)
                ),
                ev,
                elapsed,
            );
        }
        Ok(Err(e)) => {
            let (class, message) = classify(&e, seen.error.as_ref());
            return fail(class, message, ev, elapsed);
        }
        Ok(Ok(s)) => s,
    };

    let (_, conn) = stream.get_ref();
    ev.version = conn
        .protocol_version()
        .map(|v| format!("{v:?}").replace('_', "."));
    ev.cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()));
    ev.alpn = conn
        .alpn_protocol()
        .map(|a| String::from_utf8_lossy(a).into_owned());
    ev.verified = seen.error.is_none();
    if let Some(e) = &seen.error {
        // Only reachable with `insecure = true`: say what would have failed.
        let (class, message) = classify_verify(e);
        ev.would_fail = Some(format!("{class}: {message}"));
    }
    let mut result = LayerResult {
        layer: Layer::Tls,
        ok: true,
        start_ms: 0.0,
        duration_ms: ms(elapsed),
        error: None,
        evidence: Evidence::Tls(ev),
    };
    if let (Some(min), Evidence::Tls(ev)) = (plan.cert_days_left, &result.evidence)
        && let Some(left) = ev.days_left
        && left < i64::from(min)
    {
        let mut ctx = plan.ctx.clone();
        ctx.tls_name = Some(plan.server_name.to_str().into_owned());
        result.ok = false;
        result.error = Some(diagnose::failure(
            Some(Layer::Tls),
            FailureClass::ExpectCertDaysLeft,
            format!(
                "the chain's earliest certificate expires in {left} day(s), under cert_days_left = {min}"
            ),
            &ctx,
        ));
    }
    Step {
        result,
        warnings: Vec::new(),
        next: Some(stream),
    }
}

/// A `tls.handshake` failure (before any certificate check: not TLS, closed, an alert)
/// on a protocol's port, re-classed as that protocol's own class with its hint; the
/// layer stays `tls`. Certificate verdicts keep the TLS layer's classes.
pub fn reclass_handshake(l: &mut LayerResult, class: FailureClass, ctx: &Context) {
    if let Some(f) = l.error.as_mut()
        && f.class == FailureClass::TlsHandshake
    {
        f.class = class;
        f.hint = diagnose::hint(class, ctx);
    }
}

/// Maps a failed handshake to a class. The verifier's own record wins over the I/O
/// error's text because rustls wraps the same error differently on each path.
fn classify(e: &std::io::Error, verify: Option<&rustls::Error>) -> (FailureClass, String) {
    if let Some(v) = verify {
        return classify_verify(v);
    }
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::AlertReceived(alert)) => (
            FailureClass::TlsHandshake,
            format!("the server sent TLS alert `{}`", alert_name(*alert)),
        ),
        Some(rustls::Error::InvalidCertificate(_)) => classify_verify(inner.expect("matched")),
        Some(rustls::Error::PeerIncompatible(p)) => (
            FailureClass::TlsHandshake,
            format!("no common TLS parameters with the server: {p:?}"),
        ),
        Some(rustls::Error::InvalidMessage(m)) => (
            FailureClass::TlsHandshake,
            format!("the answer is not TLS ({m:?}): is this port a TLS service?"),
        ),
        Some(other) => (FailureClass::TlsHandshake, other.to_string()),
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof => (
                FailureClass::TlsHandshake,
                "the server closed the connection during the handshake (not TLS, or it rejected the ClientHello)".into(),
            ),
            std::io::ErrorKind::ConnectionReset => (
                FailureClass::TlsHandshake,
                "the connection was reset during the handshake (a firewall or TLS-inspecting proxy?)".into(),
            ),
            _ => (FailureClass::TlsHandshake, e.to_string()),
        },
    }
}

fn classify_verify(e: &rustls::Error) -> (FailureClass, String) {
    let rustls::Error::InvalidCertificate(ce) = e else {
        return (FailureClass::TlsHandshake, e.to_string());
    };
    let class = match ce {
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => FailureClass::TlsExpired,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            FailureClass::TlsNameMismatch
        }
        _ => FailureClass::TlsUntrusted,
    };
    (class, format!("certificate rejected: {e}"))
}

fn alert_name(a: rustls::AlertDescription) -> String {
    // `HandshakeFailure` -> `handshake_failure`, the RFC 8446 spelling.
    let s = format!("{a:?}");
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

pub fn describe(der: &CertificateDer<'_>) -> CertInfo {
    let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let mut info = CertInfo {
        sha256,
        ..Default::default()
    };
    if let Ok((_, x)) = x509_parser::parse_x509_certificate(der.as_ref()) {
        info.subject = x.subject().to_string();
        info.issuer = x.issuer().to_string();
        info.not_before = rfc3339(x.validity().not_before.timestamp());
        info.not_after = rfc3339(x.validity().not_after.timestamp());
        info.not_after_unix = Some(x.validity().not_after.timestamp());
        if let Ok(Some(san)) = x.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        info.sans.push(format!("DNS:{d}"))
                    }
                    x509_parser::extensions::GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => <[u8; 4]>::try_from(*b)
                                .ok()
                                .map(|a| std::net::IpAddr::from(a).to_string()),
                            16 => <[u8; 16]>::try_from(*b)
                                .ok()
                                .map(|a| std::net::IpAddr::from(a).to_string()),
                            _ => None,
                        };
                        info.sans
                            .push(format!("IP:{}", ip.unwrap_or_else(|| "?".into())));
                    }
                    _ => {}
                }
            }
        }
    }
    info
}

fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whole days until the earliest `not_after` in the chain (negative once expired).
fn earliest_days_left(chain: &[CertInfo]) -> Option<i64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    chain
        .iter()
        .filter_map(|c| c.not_after_unix)
        .min()
        .map(|na| (na - now).div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_use_rfc_spelling() {
        assert_eq!(
            alert_name(rustls::AlertDescription::HandshakeFailure),
            "handshake_failure"
        );
        assert_eq!(
            alert_name(rustls::AlertDescription::ProtocolVersion),
            "protocol_version"
        );
    }

    #[test]
    fn verify_errors_map_to_classes() {
        let cases = [
            (CertificateError::Expired, FailureClass::TlsExpired),
            (CertificateError::NotValidYet, FailureClass::TlsExpired),
            (
                CertificateError::NotValidForName,
                FailureClass::TlsNameMismatch,
            ),
            (CertificateError::UnknownIssuer, FailureClass::TlsUntrusted),
            (CertificateError::BadSignature, FailureClass::TlsUntrusted),
        ];
        for (ce, want) in cases {
            assert_eq!(
                classify_verify(&rustls::Error::InvalidCertificate(ce.clone())).0,
                want,
                "{ce:?}"
            );
        }
    }
}
