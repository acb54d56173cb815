//! The service layer in the one layer shape: over the TLS stream the TLS layer proved,
//! one credential-free exchange, the verdict on the answer, and the witness of our
//! address next to the TCP layer's local address and `WEBSITE_PRIVATE_IP`.

use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::witness;
use super::{Purpose, ServiceClass, ServiceTarget, exchange, hint, judge, request};
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::probe::step::Step;
use crate::report::{Evidence, FailureClass, Layer, LayerResult, ServiceEvidence, ms};

/// The service layer's input, built by the engine.
pub struct ServiceStep<'a> {
    pub target: ServiceTarget,
    /// Our side of the TCP connection (the TCP layer's evidence).
    pub local_addr: Option<IpAddr>,
    /// `WEBSITE_PRIVATE_IP` as the platform reported it.
    pub website_private_ip: Option<&'a str>,
    /// `private = true`: a public witness fails with `service.public_path`.
    pub private: bool,
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

pub async fn run<IO>(io: IO, step: ServiceStep<'_>, budget: &Budget) -> Step<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let start = Instant::now();
    let t = &step.target;
    let req = request::anonymous(t);
    let fail = |class: ServiceClass, message: String, ev: Option<&super::Evidence>| {
        let mut f = diagnose::failure(
            Some(Layer::Service),
            failure_class(class),
            message,
            step.ctx,
        );
        f.hint = hint(class, t, ev);
        f
    };
    let (error, answer, path, verdict) = match exchange(io, &t.host, &req, budget.deadline()).await
    {
        Err(e) => (
            Some(fail(e.class(), e.to_string(), None)),
            serde_json::Value::Null,
            witness::conclude(None, step.local_addr, step.website_private_ip, step.private),
            None,
        ),
        Ok(a) => {
            let j = judge(t, Purpose::Anonymous, a.status, &a.headers, &a.body);
            let path = witness::conclude(
                j.evidence.witness.as_ref(),
                step.local_addr,
                step.website_private_ip,
                step.private,
            );
            let code = j
                .evidence
                .error_code
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            let said = format!("{} answered {}{code}", t.kind.label(), a.status);
            // A public witness where the private path is required is the root cause, even
            // under a firewall refusal (which it explains).
            let error = match j.class() {
                _ if path.failed => Some(fail(
                    ServiceClass::PublicPath,
                    format!(
                        "{said}; it saw a public address, and the target requires the private path"
                    ),
                    Some(&j.evidence),
                )),
                Some(c) => Some(fail(c, said, Some(&j.evidence))),
                None => None,
            };
            let answer = serde_json::to_value(&j.evidence).unwrap_or_default();
            (error, answer, path, Some(j.verdict))
        }
    };
    let mut path = path;
    path.privatelink_zone =
        crate::zone::first_privatelink(step.ctx.chain.iter().map(String::as_str))
            .and_then(crate::zone::privatelink_zone);
    let ev = ServiceEvidence {
        service: t.kind.as_str().to_string(),
        verdict: verdict
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "no_answer".to_string()),
        answer,
        witness: serde_json::to_value(&path).unwrap_or_default(),
    };
    Step::last(LayerResult {
        layer: Layer::Service,
        ok: error.is_none(),
        start_ms: 0.0,
        duration_ms: ms(start.elapsed()),
        error,
        evidence: Evidence::Service(Box::new(ev)),
    })
}
