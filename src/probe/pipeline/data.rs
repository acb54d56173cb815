//! The data-service arms of the pipeline (`postgres://`, `mysql://`, `redis(s)://`): the
//! probe options from the target's keys (user, password or managed identity), the TLS
//! layer's input, and the layer run (split from pipeline.rs; the same `impl Engine`).

use tokio::net::TcpStream;

use super::super::handshake::{Credential, TlsMode};
use super::super::identity::{IdentityAsk, Tokens};
use super::super::{Engine, mysql, postgres, redis, tds};
use super::Ran;
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::spec::{ManagedIdentity, TargetConfig, TargetSpec};

impl Engine {
    /// A managed-identity login's request for a token, if the target asks for one.
    pub(super) fn identity_ask<'a>(
        &self,
        mi: Option<&'a ManagedIdentity>,
        tokens: &'a Tokens,
    ) -> Option<IdentityAsk<'a>> {
        mi.map(|mi| IdentityAsk {
            tokens,
            client_id: mi.client_id.as_deref(),
            timeout: self.settings.timeouts.login,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn data_service(
        &self,
        t: &TargetConfig,
        stream: TcpStream,
        name: Option<String>,
        ctx: &Context,
        budget: &Budget,
        tokens: &Tokens,
        ran: &mut Ran,
    ) {
        let mut ctx = ctx.clone();
        let server_name = tds::server_name(name.as_deref(), stream.peer_addr().ok());
        ctx.tls_name = Some(server_name.to_str().into_owned());
        let (mode, tls) = self.db_tls(t, server_name, &ctx);
        let password = t.db.password.clone().map(Credential::Password);
        let identity = self.identity_ask(t.db.identity.as_ref(), tokens);
        let timeout = self.settings.timeouts.login + self.settings.timeouts.query;
        match &t.spec {
            TargetSpec::Postgres { database, .. } => {
                let mut opts = postgres::Options::credential_free(mode);
                opts.database = database.clone();
                if let Some(u) = &t.db.user {
                    opts.user = u.clone();
                }
                opts.credential = password.unwrap_or_default();
                let step = postgres::PostgresStep {
                    opts,
                    tls,
                    timeout,
                    identity,
                    ctx: &ctx,
                };
                ran.run_tls_and(postgres::run(stream, step, budget)).await;
            }
            TargetSpec::Mysql { database, .. } => {
                let mut opts = mysql::Options::credential_free(mode);
                opts.database = database.clone();
                if let Some(u) = &t.db.user {
                    opts.user = u.clone();
                }
                opts.credential = password.unwrap_or_default();
                let step = mysql::MysqlStep {
                    opts,
                    tls,
                    timeout,
                    identity,
                    ctx: &ctx,
                };
                ran.run_tls_and(mysql::run(stream, step, budget)).await;
            }
            TargetSpec::Redis { tls: on, .. } => {
                let opts = redis::Options {
                    tls: if *on { mode } else { TlsMode::Disable },
                    user: t.db.user.clone(),
                    credential: password.unwrap_or_default(),
                };
                let step = redis::RedisStep {
                    opts,
                    tls,
                    timeout,
                    identity,
                    ctx: &ctx,
                };
                ran.run_tls_and(redis::run(stream, step, budget)).await;
            }
            _ => {}
        }
    }
}
