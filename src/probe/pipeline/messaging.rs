//! The messaging arms of the pipeline (`amqp(s)://`, `amqpws(s)://`, `kafka://`): the TLS
//! layer first when the target uses TLS (its handshake failure re-classed as the
//! protocol's `tls_refused`), then the protocol's layer on the stream it hands on (the
//! same `impl Engine`; split from pipeline.rs to keep each file readable).

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::super::identity::{Tokens, resource};
use super::super::{Engine, amqp, kafka, tds, tls};
use super::Ran;
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::report::LayerResult;
use crate::spec::{DbTls, Host, MsgAuth, ScramHash, TargetConfig, TargetSpec};

impl Engine {
    /// The TLS layer of a messaging target, or the plain stream; `None` when TLS failed
    /// (its result, re-classed by `reclass`, is in `ran`).
    async fn msg_transport(
        &self,
        t: &TargetConfig,
        stream: TcpStream,
        ctx: &Context,
        budget: &Budget,
        ran: &mut Ran,
        reclass: fn(&mut LayerResult, &Context),
    ) -> Option<Box<dyn amqp::IoStream>> {
        let (tls_on, alpn) = match &t.spec {
            // A WebSocket upgrade is HTTP/1.1.
            TargetSpec::Amqp { tls, websocket, .. } => (
                *tls && t.db.tls != DbTls::Disable,
                match websocket {
                    Some(_) => vec![b"http/1.1".to_vec()],
                    None => Vec::new(),
                },
            ),
            _ => (t.db.tls != DbTls::Disable, Vec::new()),
        };
        if !tls_on {
            return Some(Box::new(stream));
        }
        let (_, mut step) = self.db_tls(t, server_name(t, &stream), ctx);
        step.alpn = alpn;
        let began = Instant::now();
        let mut out = tls::run(stream, step, budget).await;
        reclass(&mut out.result, ctx);
        let io = ran.push(began, out)?;
        Some(Box::new(io))
    }

    pub(super) async fn amqp(
        &self,
        t: &TargetConfig,
        stream: TcpStream,
        ctx: &Context,
        budget: &Budget,
        tokens: &Tokens,
        ran: &mut Ran,
    ) {
        let TargetSpec::Amqp {
            websocket, entity, ..
        } = &t.spec
        else {
            return;
        };
        let mut ctx = ctx.clone();
        let name = server_name(t, &stream);
        ctx.tls_name = Some(name.to_str().into_owned());
        let hostname = name.to_str().into_owned();
        let reclass = amqp::tls_refused as fn(&mut LayerResult, &Context);
        let Some(io) = self
            .msg_transport(t, stream, &ctx, budget, ran, reclass)
            .await
        else {
            return;
        };
        let mut opts = amqp::Options::new(hostname);
        opts.websocket = websocket
            .as_ref()
            .map(|path| amqp::WebSocket { path: path.clone() });
        opts.entity = entity.clone();
        opts.credentials = match &t.msg.auth {
            MsgAuth::None => amqp::Credentials::None,
            MsgAuth::Plain { user, password } => amqp::Credentials::Plain {
                user: user.clone(),
                password: password.clone(),
            },
            // The config takes `sasl_mechanism` on kafka:// only.
            MsgAuth::Scram { .. } => amqp::Credentials::None,
            MsgAuth::SasKey { key_name, key } => amqp::Credentials::SasKey {
                key_name: key_name.clone(),
                key: key.clone(),
            },
            MsgAuth::ConnectionString(cs) => amqp::Credentials::ConnectionString(cs.clone()),
            // The layer fetches the token and sends it with CBS put-token.
            MsgAuth::ManagedIdentity(_) => amqp::Credentials::None,
        };
        let step = amqp::AmqpStep {
            opts,
            timeout: self.settings.timeouts.login + self.settings.timeouts.query,
            identity: self.identity_ask(msg_identity(t), tokens),
            resource: resource::SERVICE_BUS.into(),
            ctx: &ctx,
        };
        ran.run(amqp::run(io, step, budget)).await;
    }

    pub(super) async fn kafka(
        &self,
        t: &TargetConfig,
        stream: TcpStream,
        ctx: &Context,
        budget: &Budget,
        tokens: &Tokens,
        ran: &mut Ran,
    ) {
        let mut ctx = ctx.clone();
        let name = server_name(t, &stream).to_str().into_owned();
        ctx.tls_name = Some(name.clone());
        let reclass = kafka::tls_refused as fn(&mut LayerResult, &Context);
        let Some(io) = self
            .msg_transport(t, stream, &ctx, budget, ran, reclass)
            .await
        else {
            return;
        };
        let credentials = match &t.msg.auth {
            MsgAuth::None => kafka::Credentials::None,
            MsgAuth::Plain { user, password } => kafka::Credentials::Plain {
                user: user.clone(),
                password: password.clone(),
            },
            MsgAuth::Scram {
                mechanism,
                user,
                password,
            } => kafka::Credentials::Scram {
                mechanism: match mechanism {
                    ScramHash::Sha256 => kafka::Scram::Sha256,
                    ScramHash::Sha512 => kafka::Scram::Sha512,
                },
                user: user.clone(),
                password: password.clone(),
            },
            MsgAuth::ConnectionString(cs) => kafka::Credentials::ConnectionString(cs.clone()),
            // The layer fetches the token and sends it with OAUTHBEARER.
            MsgAuth::ManagedIdentity(_) => kafka::Credentials::None,
            // The config refuses `sas_key` on kafka:// (Event Hubs' Kafka endpoint takes the
            // connection string), so this arm is never taken.
            MsgAuth::SasKey { .. } => kafka::Credentials::None,
        };
        let opts = kafka::Options {
            tls: None,
            credentials,
            client_id: None,
        };
        let step = kafka::KafkaStep {
            opts,
            timeout: self.settings.timeouts.login + self.settings.timeouts.query,
            identity: self.identity_ask(msg_identity(t), tokens),
            // Kafka clients ask for a token for the namespace itself (docs/azure-facts.md).
            resource: format!("https://{name}"),
            ctx: &ctx,
        };
        ran.run(kafka::run(io, step, budget)).await;
    }
}

/// The managed identity a messaging target logs in with, if any.
fn msg_identity(t: &TargetConfig) -> Option<&crate::spec::ManagedIdentity> {
    match &t.msg.auth {
        MsgAuth::ManagedIdentity(mi) => Some(mi),
        _ => None,
    }
}

/// The name TLS verifies and AMQP sends as its host: `sni`, the target's name, or the
/// address connected to.
fn server_name(t: &TargetConfig, stream: &TcpStream) -> rustls::pki_types::ServerName<'static> {
    let name = t.tls.sni.clone().or_else(|| match t.spec.host() {
        Some(Host::Name(n)) => Some(n.clone()),
        _ => None,
    });
    tds::server_name(name.as_deref(), stream.peer_addr().ok())
}
