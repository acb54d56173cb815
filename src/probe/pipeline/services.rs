//! The service layer's arm of the pipeline: TLS first for `https://` (plain HTTP for an
//! emulator on `http://`), then the service layer with the authorised read the target
//! asks for: a token from the app's identity (`http.identity`, fetched by the layer
//! through `probe::identity`), or a Shared Key read (`http.account_key`). The key is read
//! from its app setting here, when the probe runs, and lives only as a `Secret` inside the
//! signed request.

use std::time::SystemTime;

use tokio::net::TcpStream;

use super::super::identity::Tokens;
use super::super::{Engine, service};
use super::Ran;
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::spec::{Host, TargetConfig};
use service::ServiceRequest;
use service::layer::ServiceStep;

impl Engine {
    /// The service layer over `stream` for `target` (TLS first when `https`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn service_layer(
        &self,
        t: &TargetConfig,
        stream: TcpStream,
        https: bool,
        host: &Host,
        name: Option<&str>,
        mut target: service::ServiceTarget,
        ctx: &Context,
        budget: &Budget,
        tokens: &Tokens,
        ran: &mut Ran,
    ) {
        let local_addr = stream.local_addr().ok().map(|a| a.ip());
        let identity = self.identity_ask(t.http.identity.as_ref(), tokens);
        // One authorised read: the identity's when the target asks for both.
        let shared_key = match identity {
            Some(_) => None,
            None => self.shared_key_read(t, &mut target),
        };
        let step = ServiceStep {
            target,
            local_addr,
            website_private_ip: self
                .facts
                .site
                .as_ref()
                .and_then(|s| s.private_ip.as_deref()),
            private: t.expect.private,
            identity,
            shared_key,
            ctx,
        };
        if https {
            let alpn = vec![b"http/1.1".to_vec()];
            if let Some(io) = self
                .tls(t, stream, host, name, alpn, ctx, budget, ran)
                .await
            {
                ran.run(service::layer::run(io, step, budget)).await;
            }
        } else {
            ran.run(service::layer::run(stream, step, budget)).await;
        }
    }

    /// The Shared Key read of `t`, if it references a key (`account_key`). The account
    /// comes from the connection string when it names one (an emulator's path-style
    /// account too).
    fn shared_key_read(
        &self,
        t: &TargetConfig,
        target: &mut service::ServiceTarget,
    ) -> Option<Result<ServiceRequest, String>> {
        let setting = t.http.account_key.as_deref()?;
        Some(
            (self.app_settings)(setting)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("app setting `{setting}` is not set"))
                .and_then(|v| {
                    crate::discover::storage_key(&v)
                        .map_err(|e| format!("app setting `{setting}`: {e}"))
                })
                .and_then(|k| {
                    if let Some(a) = k.account {
                        target.account = a;
                    }
                    service::sharedkey::shared_key(target, &k.key, SystemTime::now())
                        .map_err(|e| format!("app setting `{setting}`: {e}"))
                }),
        )
    }
}
