//! The service layer in the one layer shape: over the stream the layers below proved (TLS,
//! or plain TCP for an emulator), one credential-free exchange, the verdict on the answer,
//! and the witness of our address next to the TCP layer's local address and
//! `WEBSITE_PRIVATE_IP`. With the app's identity (`authentication = "managed_identity"`)
//! or a storage key (`account_key = "env:NAME"`), when the anonymous answer shows the
//! service let us in, the one authorised read follows on the same connection (names only,
//! never values), with a token or signed with Shared Key, and its verdict is the layer's:
//! a missing role (`service.rbac`) or a refused key (`service.auth_failed`) is then told
//! apart from a network block (`service.firewall`).

use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::witness;
use super::{
    Judgement, Purpose, ServiceClass, ServiceKind, ServiceRequest, ServiceTarget, Session, hint,
    judge, request,
};
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::probe::identity::{self, IdentityAsk};
use crate::probe::step::Step;
use crate::report::{
    Evidence, Failure, FailureClass, IdentityEvidence, Layer, LayerResult, ServiceEvidence, ms,
};

/// The service layer's input, built by the engine.
pub struct ServiceStep<'a> {
    pub target: ServiceTarget,
    /// Our side of the TCP connection (the TCP layer's evidence).
    pub local_addr: Option<IpAddr>,
    /// `WEBSITE_PRIVATE_IP` as the platform reported it.
    pub website_private_ip: Option<&'a str>,
    /// `private = true`: a public witness fails with `service.public_path`.
    pub private: bool,
    /// The authorised read with a token from the app's managed identity.
    pub identity: Option<IdentityAsk<'a>>,
    /// The authorised read signed with the referenced storage key, or why it could not be
    /// signed (a warning, not a failure: the anonymous exchange proves the route). Used
    /// when the target asks for no identity read.
    pub shared_key: Option<Result<ServiceRequest, String>>,
    pub ctx: &'a Context,
}

/// The class of the report table for a service-layer class.
pub fn failure_class(c: ServiceClass) -> FailureClass {
    match c {
        ServiceClass::Firewall => FailureClass::ServiceFirewall,
        ServiceClass::Rbac => FailureClass::ServiceRbac,
        ServiceClass::AuthFailed => FailureClass::ServiceAuthFailed,
        ServiceClass::NotService => FailureClass::ServiceNotService,
        ServiceClass::Error => FailureClass::ServiceError,
        ServiceClass::Unexpected => FailureClass::ServiceUnexpected,
        ServiceClass::PublicPath => FailureClass::ServicePublicPath,
        ServiceClass::Deadline => FailureClass::ServiceDeadline,
        ServiceClass::HttpProtocol => FailureClass::ServiceHttpProtocol,
    }
}

/// What the layer learnt, for the evidence.
struct Seen {
    verdict: Option<super::Verdict>,
    answer: serde_json::Value,
    authorized: Option<serde_json::Value>,
    identity: Option<IdentityEvidence>,
    path: witness::PathEvidence,
    warnings: Vec<String>,
}

pub async fn run<IO>(io: IO, step: ServiceStep<'_>, budget: &Budget) -> Step<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let start = Instant::now();
    let t = &step.target;
    let fail = |class: ServiceClass, message: String, ev: Option<&super::Evidence>| {
        let mut f = diagnose::failure(
            Some(Layer::Service),
            failure_class(class),
            message,
            step.ctx,
        );
        f.hint = hint(class, t, ev);
        if class == ServiceClass::Rbac || class == ServiceClass::AuthFailed {
            f.hint
                .push_str(&match step.identity.and_then(|a| a.client_id) {
                    Some(c) => {
                        format!(" The identity used: the user-assigned one with client id {c}.")
                    }
                    None if step.identity.is_some() => {
                        " The identity used: the app's system-assigned one.".into()
                    }
                    None => String::new(),
                });
        }
        f
    };
    let conclude = |j: Option<&Judgement>| {
        witness::conclude(
            j.and_then(|j| j.evidence.witness.as_ref()),
            step.local_addr,
            step.website_private_ip,
            step.private,
        )
    };
    let mut seen = Seen {
        verdict: None,
        answer: serde_json::Value::Null,
        authorized: None,
        identity: None,
        path: conclude(None),
        warnings: Vec::new(),
    };
    // The token, once there is one: masked wherever the service's answer quoted it.
    let mut sent: Option<crate::secret::Secret> = None;
    let mut error = async {
        let mut session = Session::open(io, budget.deadline())
            .await
            .map_err(|e| fail(e.class(), e.to_string(), None))?;
        let req = request::anonymous(t);
        let a = session
            .send(&t.host, &req, budget.deadline())
            .await
            .map_err(|e| fail(e.class(), e.to_string(), None))?;
        let j = judge(t, Purpose::Anonymous, a.status, &a.headers, &a.body);
        seen.path = conclude(Some(&j));
        seen.verdict = Some(j.verdict);
        seen.answer = serde_json::to_value(&j.evidence).unwrap_or_default();
        let first = said(t, a.status, &j);
        // A public witness where the private path is required is the root cause, even
        // under a firewall refusal (which it explains).
        if seen.path.failed {
            return Err(fail(
                ServiceClass::PublicPath,
                format!(
                    "{first}; it saw a public address, and the target requires the private path"
                ),
                Some(&j.evidence),
            ));
        }
        if let Some(c) = j.class() {
            return Err(fail(c, first, Some(&j.evidence)));
        }
        let (req, what) = if let Some(ask) = step.identity {
            if t.kind == ServiceKind::FunctionApp {
                // routeproof's /api/health is anonymous: there is nothing to read with a token.
                seen.warnings.push(
                    "authentication = \"managed_identity\" asks for nothing on an app target: routeproof's /api/health is anonymous, there is no authorised read".into(),
                );
                return Ok(());
            }
            // The service let us in: now the one authorised read, with the identity's token.
            let fetch = ask.token(&request::token_resource(t), budget).await;
            seen.identity = Some(fetch.evidence);
            let token = fetch.token.map_err(|e| {
                let mut f = identity::failure(Layer::Service, &e, ask.client_id, step.ctx);
                f.message = format!("{first}; the authorised read needs a token: {}", f.message);
                f
            })?;
            sent = Some(token.secret().clone());
            let req = request::authorized(t, token.secret(), std::time::SystemTime::now());
            (req, "authorised read")
        } else if let Some(signed) = step.shared_key {
            let closing = a
                .headers
                .get(hyper::header::CONNECTION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let signed = match signed {
                Ok(_) if closing => {
                    Err("the service closed the connection after its first answer".into())
                }
                other => other,
            };
            match signed {
                // The service let us in: now the one authorised read, with the account key.
                Ok(r) => (r, "authorised read (Shared Key)"),
                Err(why) => {
                    seen.warnings
                        .push(format!("service: the Shared Key read was not run: {why}"));
                    return Ok(());
                }
            }
        } else {
            return Ok(());
        };
        let a = session
            .send(&t.host, &req, budget.deadline())
            .await
            .map_err(|e| {
                fail(
                    e.class(),
                    format!("the authorised read after the anonymous answer: {e}"),
                    None,
                )
            })?;
        let j = judge(t, Purpose::Authorized, a.status, &a.headers, &a.body);
        seen.verdict = Some(j.verdict);
        seen.authorized = Some(serde_json::to_value(&j.evidence).unwrap_or_default());
        match j.class() {
            Some(c) => Err(fail(
                c,
                format!("{what}: {}", said(t, a.status, &j)),
                Some(&j.evidence),
            )),
            None => Ok(()),
        }
    }
    .await
    .err();
    seen.path.privatelink_zone =
        crate::zone::first_privatelink(step.ctx.chain.iter().map(String::as_str))
            .and_then(crate::zone::privatelink_zone);
    if let Some(tok) = &sent {
        if let Some(a) = &mut seen.authorized {
            identity::mask_json(a, tok.expose());
        }
        if let Some(f) = &mut error {
            f.message = crate::secret::mask_value(&f.message, tok.expose());
            f.hint = crate::secret::mask_value(&f.hint, tok.expose());
        }
    }
    finish(start, error, seen, t)
}

fn said(t: &ServiceTarget, status: u16, j: &Judgement) -> String {
    let code = j
        .evidence
        .error_code
        .as_deref()
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    format!("{} answered {status}{code}", t.kind.label())
}

fn finish(start: Instant, error: Option<Failure>, seen: Seen, t: &ServiceTarget) -> Step<()> {
    let ev = ServiceEvidence {
        service: t.kind.as_str().to_string(),
        verdict: seen
            .verdict
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "no_answer".to_string()),
        answer: seen.answer,
        witness: serde_json::to_value(&seen.path).unwrap_or_default(),
        authorized: seen.authorized,
        identity: seen.identity,
    };
    let mut out = Step::last(LayerResult {
        layer: Layer::Service,
        ok: error.is_none(),
        start_ms: 0.0,
        duration_ms: ms(start.elapsed()),
        error,
        evidence: Evidence::Service(Box::new(ev)),
    });
    out.warnings = seen.warnings;
    out
}
