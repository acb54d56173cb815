//! Azure SQL's Redirect connection policy: the gateway answers the login with a routing
//! ENVCHANGE naming the database's own node (ports 11000-11999), and a client logs in
//! again there. The TDS layer follows it, asking the engine for the connection
//! (`NextHop`: the engine's own DNS and TCP layers, the same proven path), so the hop's
//! DNS and TCP results are evidence in the report; PRELOGIN, TLS and LOGIN7 then run
//! on that one connection, as on the first.

use std::future::Future;
use std::pin::Pin;

use tokio::net::TcpStream;

use super::{Fail, Login, TdsStep, login, prelogin_and_tls};
use crate::budget::Budget;
use crate::diagnose::Context;
use crate::report::{FailureClass, HopHandshake, LayerResult, RedirectEvidence, TdsEvidence};

/// The redirect hop's connection, and the layers that opened it.
pub struct Hop {
    /// The hop's own DNS (for a name) and TCP results.
    pub layers: Vec<LayerResult>,
    /// The connection, when the layers succeeded.
    pub stream: Option<TcpStream>,
}

/// Why a hop was not tried at all.
pub enum HopError {
    /// The host in the routing ENVCHANGE is not a host name or an address.
    Unusable(String),
    /// The address policy refused the hop's address.
    Refused { rule: &'static str, message: String },
}

/// Opens a connection to `host:port` the way the engine opens a target's.
pub trait NextHop: Sync {
    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        ctx: &'a Context,
        budget: &'a Budget,
    ) -> Pin<Box<dyn Future<Output = Result<Hop, HopError>> + Send + 'a>>;
}

/// Connects through `step.hop` and logs in there; one redirect is followed, as clients do.
pub(super) async fn follow(
    host: &str,
    port: u16,
    step: &TdsStep<'_>,
    budget: &Budget,
    ev: &mut TdsEvidence,
) -> Result<(), Fail> {
    let target = format!("{host}:{port}");
    let hop = match step.hop.connect(host, port, step.ctx, budget).await {
        Ok(hop) => hop,
        Err(HopError::Unusable(e)) => {
            return Err((
                FailureClass::TdsRedirect,
                format!("redirect to an unusable host `{host}`: {e}"),
            ));
        }
        Err(HopError::Refused { rule, message }) => {
            return Err((
                FailureClass::TdsRedirect,
                format!("redirect to {target} refused by policy ({rule}): {message}"),
            ));
        }
    };
    let failure = hop.layers.iter().find_map(|l| l.error.clone());
    ev.redirect = Some(RedirectEvidence {
        target: target.clone(),
        layers: hop.layers,
        handshake: None,
    });
    let Some(stream) = hop.stream else {
        let (class, msg) = failure
            .map(|f| (f.class, f.message))
            .unwrap_or((FailureClass::TcpError, "no connection".into()));
        return Err((
            FailureClass::TdsRedirect,
            format!("redirect to {target}: {class}: {msg}"),
        ));
    };
    // The hop's PRELOGIN and handshake are its own: the layer's fields stay the first
    // connection's (the proven route), the hop's go with the redirect, failed or not, and a
    // failure here names the hop.
    let mut hop_ev = TdsEvidence::default();
    let proven = prelogin_and_tls(stream, step, budget, &mut hop_ev).await;
    if let Some(r) = ev.redirect.as_mut() {
        r.handshake = Some(HopHandshake::of(hop_ev));
    }
    let proven = proven
        .map_err(|(class, msg)| (class, format!("at the redirect target {target}: {msg}")))?;
    match login(proven, host, step, budget, ev).await? {
        Login::Done => Ok(()),
        Login::Redirect { host, port } => Err((
            FailureClass::TdsRedirect,
            format!(
                "redirected again, to {host}:{port}: the probe follows one redirect, as clients do"
            ),
        )),
    }
}
