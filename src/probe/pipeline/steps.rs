//! The step inputs the pipeline builds for the layers above TCP: which Azure service an
//! https target is, the TLS input of a data-service target, the TLS layer itself, the
//! HTTP layer's input, and the SMB transport classes (split from pipeline.rs to keep each
//! file readable; the same `impl Engine`).

use std::sync::Arc;

use tokio::net::TcpStream;

use super::super::handshake::TlsMode;
use super::super::{Engine, http, service, smb, tls};
use super::Ran;
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::report::{Evidence, FailureClass, LayerResult};
use crate::spec::{DbTls, Host, TargetConfig, TargetSpec};

impl Engine {
    /// The service an https target names (`service = "…"`) or its host's suffix reveals.
    pub(super) fn service_target(
        &self,
        t: &TargetConfig,
        host: &Host,
    ) -> Option<service::ServiceTarget> {
        let h = host.to_string();
        let h = t.tls.sni.clone().unwrap_or(h);
        let target = match &t.http.service {
            Some(k) => {
                let kind = k.parse().ok()?;
                service::ServiceTarget::declared(kind, &h, None, t.http.emulator)
            }
            // A recognised host with HTTP checks of its own (`status`, `header_contains`,
            // ...) keeps the HTTP layer those checks belong to.
            None if http_checks(&t.http) => return None,
            None => service::ServiceTarget::recognise(&h)?,
        };
        if target.kind != service::ServiceKind::FunctionApp {
            return Some(target);
        }
        // An app is asked at its health path: recognised by name only when the URL is
        // routeproof's health function (any other URL of an app keeps the HTTP layer);
        // declared (`service = "app"`), at the URL's path or the default one.
        let path = match &t.spec {
            TargetSpec::Http { url, .. } => url.path().trim_end_matches('/').to_string(),
            _ => String::new(),
        };
        let path = match (target.recognised, path.as_str()) {
            (_, "/api/health" | "/health") => path,
            (false, "") => service::request::HEALTH_PATH.to_string(),
            (false, _) => path,
            (true, _) => return None,
        };
        Some(service::ServiceTarget {
            path: Some(path),
            ..target
        })
    }

    /// The TLS mode and the TLS layer's input of a data-service target (`postgres://`, `mysql://`).
    pub(super) fn db_tls<'a>(
        &self,
        t: &TargetConfig,
        server_name: rustls::pki_types::ServerName<'static>,
        ctx: &'a Context,
    ) -> (TlsMode, tls::TlsStep<'a>) {
        let mode = match t.db.tls {
            DbTls::Disable => TlsMode::Disable,
            DbTls::Require => TlsMode::Require,
            DbTls::VerifyFull => TlsMode::VerifyFull,
        };
        // Without TLS the step never runs: the system trust store (~150 certificates read
        // and parsed, most of a plain one-shot probe's CPU) is not loaded for it.
        let tls_off =
            mode == TlsMode::Disable || matches!(t.spec, TargetSpec::Redis { tls: false, .. });
        let roots = if tls_off {
            Arc::new(rustls::RootCertStore::empty())
        } else {
            self.roots_for(&t.tls)
        };
        let step = tls::TlsStep {
            server_name,
            roots,
            insecure: t.tls.insecure || t.db.tls == DbTls::Require,
            alpn: Vec::new(),
            timeout: self.settings.timeouts.tls,
            cert_days_left: t.tls.cert_days_left,
            ctx,
        };
        (mode, step)
    }

    /// The TLS layer over `stream`; hands on the TLS stream when it passed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn tls(
        &self,
        t: &TargetConfig,
        stream: TcpStream,
        host: &Host,
        name: Option<&str>,
        alpn: Vec<Vec<u8>>,
        ctx: &Context,
        budget: &Budget,
        ran: &mut Ran,
    ) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
        let peer_ip = stream.peer_addr().map(|a| a.ip()).ok();
        let server_name = match (name, host, peer_ip) {
            (Some(n), _, _) => rustls::pki_types::ServerName::try_from(n.to_string()).ok(),
            (None, Host::Ip(ip), _) => Some((*ip).into()),
            (None, _, Some(ip)) => Some(ip.into()),
            _ => None,
        }?;
        let step = tls::TlsStep {
            server_name,
            roots: self.roots_for(&t.tls),
            insecure: t.tls.insecure,
            alpn,
            timeout: self.settings.timeouts.tls,
            cert_days_left: t.tls.cert_days_left,
            ctx,
        };
        ran.run(tls::run(stream, step, budget)).await
    }

    pub(super) fn http_step<'a>(
        &self,
        t: &'a TargetConfig,
        url: &'a url::Url,
        h2: bool,
        sni: Option<String>,
        ctx: &'a Context,
    ) -> http::HttpStep<'a> {
        // With `sni` set for an IP target, the virtual host is that name too.
        let host_name = t
            .tls
            .sni
            .clone()
            .or(sni)
            .unwrap_or_else(|| url.host_str().unwrap_or("").to_string());
        let host = match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name,
        };
        http::HttpStep {
            url,
            opts: &t.http,
            host,
            h2,
            ttfb_timeout: self.settings.timeouts.http,
            body_timeout: self.settings.timeouts.body,
            enforce_body_limit: t.http.enforce_body_limit,
            ctx,
        }
    }
}

/// The target asks the HTTP layer for something beyond the default GET with 200-399.
pub(super) fn http_checks(o: &crate::spec::HttpOptions) -> bool {
    o.method != "GET"
        || !o.headers.is_empty()
        || o.body.is_some()
        || o.status != [(200, 399)]
        || o.body_contains.is_some()
        || o.body_regex.is_some()
        || !o.header_contains.is_empty()
        || o.follow_redirects
}

/// `smb://`: a refused or blackholed 445 is the content share's failure, with its hint.
pub(super) fn smb_transport_class(l: &mut LayerResult) {
    let Some(f) = l.error.as_mut() else {
        return;
    };
    let (class, hint) = match f.class {
        FailureClass::TcpRefused => (
            FailureClass::SmbRefused,
            smb::SmbError::Refused {
                addr: match &l.evidence {
                    Evidence::Tcp(t) => t.peer.map(|p| p.to_string()).unwrap_or_default(),
                    _ => String::new(),
                },
            },
        ),
        FailureClass::TcpTimeout => (
            FailureClass::SmbTimeout,
            smb::SmbError::Timeout { phase: "connect" },
        ),
        _ => return,
    };
    f.class = class;
    f.hint = hint.hint();
}
