//! The managed-identity side of the layers that log in (`postgres`, `mysql`, `redis`,
//! `amqp`, `kafka`, the service layer; TDS uses [`IdentityAsk::token`] alone): ask the
//! run's [`Tokens`] for a token, and when there is none, let the layer prove the route
//! credential-free and then report why the login could not happen.
//!
//! Order in a data-service layer: the token first (a local call, milliseconds), so the
//! login runs on a fresh connection; without a token the layer runs credential-free, and
//! if that passed, the layer fails with the `identity.*` class (the server answered, so
//! the route is proven and the hint says so); if it failed, its own failure stays first
//! and the token's reason is a warning.

use std::sync::Arc;
use std::time::Duration;

use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::layer::Layer;
pub use crate::platform::identity::{IdentityError, Token, Tokens, resource};
use crate::report::{Evidence, Failure, IdentityEvidence};
use crate::secret::mask_value;

use super::step::Step;

/// A layer's request for the app's identity: the run's tokens, which identity, and how
/// long the endpoint may take (the login timeout, cut by the run's deadline).
#[derive(Clone, Copy)]
pub struct IdentityAsk<'a> {
    pub tokens: &'a Tokens,
    /// A user-assigned identity's client id; `None`: the system-assigned identity.
    pub client_id: Option<&'a str>,
    pub timeout: Duration,
}

/// A token request's outcome and its evidence.
pub struct Fetch {
    pub token: Result<Arc<Token>, IdentityError>,
    pub evidence: IdentityEvidence,
    pub client_id: Option<String>,
}

impl IdentityAsk<'_> {
    /// The token for `resource` (see [`resource`]); the one function every login calls.
    pub async fn token(&self, resource: &str, budget: &Budget) -> Fetch {
        let (token, evidence) = self
            .tokens
            .get(resource, self.client_id, budget, self.timeout)
            .await;
        Fetch {
            token,
            evidence,
            client_id: self.client_id.map(str::to_string),
        }
    }
}

/// The token for `resource` when the layer logs in with the app's identity (`ask`), else
/// `None`: the first step of every data-service and messaging layer.
pub async fn fetch(
    ask: Option<&IdentityAsk<'_>>,
    resource: &str,
    budget: &Budget,
) -> Option<Fetch> {
    match ask {
        Some(a) => Some(a.token(resource, budget).await),
        None => None,
    }
}

impl Fetch {
    /// The token's value, when there is one.
    pub fn secret(&self) -> Option<&crate::secret::Secret> {
        self.token.as_ref().ok().map(|t| t.secret())
    }
}

/// The report's failure for a token that could not be had, at `layer`, with the hint
/// for the identity the login asked for.
pub fn failure(layer: Layer, e: &IdentityError, client_id: Option<&str>, ctx: &Context) -> Failure {
    let mut ctx = ctx.clone();
    ctx.client_id = client_id.map(str::to_string);
    diagnose::failure(Some(layer), e.class(), e.to_string(), &ctx)
}

/// Masks `token` in every string of `v` (see `secret::mask_value`).
pub fn mask_json(v: &mut serde_json::Value, token: &str) {
    match v {
        serde_json::Value::String(s) => *s = mask_value(s, token),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| mask_json(x, token)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| mask_json(x, token)),
        _ => {}
    }
}

/// Puts the token request into a data-service layer's result: its evidence, and when
/// there was no token, the `identity.*` failure (or a warning, under the layer's own).
/// A server that quoted the token back finds it masked in the evidence and message.
pub fn fold(step: &mut Step<()>, layer: Layer, fetch: Fetch, ctx: &Context) {
    let result = &mut step.result;
    if let Evidence::Protocol(p) = &mut result.evidence {
        p.identity = Some(fetch.evidence);
        if let Ok(t) = &fetch.token {
            mask_json(&mut p.detail, t.secret().expose());
        }
    }
    let Err(e) = &fetch.token else {
        let token = fetch
            .token
            .as_ref()
            .map(|t| t.secret().expose())
            .unwrap_or_default();
        if let Some(f) = &mut result.error {
            f.message = mask_value(&f.message, token);
        }
        return;
    };
    match &result.error {
        None => {
            let mut f = failure(layer, e, fetch.client_id.as_deref(), ctx);
            f.message = format!(
                "{} (the server answered credential-free; the login was not attempted)",
                f.message
            );
            result.error = Some(f);
            result.ok = false;
        }
        Some(_) => step.warnings.push(format!(
            "no managed-identity token ({}): {e}; the login was not attempted",
            e.class()
        )),
    }
}
