//! TCP layer: connect to the address the DNS layer reported (never a second lookup) and
//! record our local address, which on Azure is the instance's address in the integration
//! subnet: the evidence that the packet left through the VNet.
//!
//! OS errors are mapped to classes once, here, from the errno (pingora does the same):
//! hints and exit codes never look at message text.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use tokio::net::{TcpSocket, TcpStream};

use super::step::Step;
use crate::budget::Budget;
use crate::diagnose::{self, Context};
use crate::report::{Evidence, FailureClass, Layer, LayerResult, TcpAttempt, TcpEvidence, ms};

/// The TCP layer's input; it hands on the open connection, for the layers above (TLS,
/// TDS, HTTP).
pub struct TcpStep<'a> {
    pub addrs: &'a [SocketAddr],
    /// Probe every address instead of stopping at the first that connects.
    pub all: bool,
    pub timeout: Duration,
    /// Watch a fresh connection this long for an immediate reset (0: don't).
    pub settle: Duration,
    pub ctx: &'a Context,
}

pub async fn run(plan: TcpStep<'_>, budget: &Budget) -> Step<TcpStream> {
    let mut attempts: Vec<TcpAttempt> = Vec::new();
    let mut stream = None;
    let mut warnings = Vec::new();
    let mut first_failure = None;
    let mut settled = None;

    for &addr in plan.addrs {
        let (limit, cut) = budget.limit(plan.timeout);
        let t0 = Instant::now();
        let res = match tokio::time::timeout(limit, open(addr)).await {
            Ok(r) => r,
            Err(_) if cut => Err((
                FailureClass::Deadline,
                format!("run deadline reached while connecting to {addr}"),
            )),
            Err(_) => Err((
                FailureClass::TcpTimeout,
                format!(
                    "no answer from {addr} within {} (SYN unanswered)",
                    humantime::format_duration(limit)
                ),
            )),
        };
        // Connect time is the measurement; the settle window is reported on its own.
        let elapsed = t0.elapsed();
        let res = match res {
            Ok(s) if !plan.settle.is_zero() => {
                let window = plan.settle.min(budget.remaining());
                settled = Some(window);
                settle(s, addr, window).await
            }
            other => other,
        };
        match res {
            Ok(s) => {
                attempts.push(TcpAttempt {
                    peer: addr,
                    ok: true,
                    duration_ms: ms(elapsed),
                    local: s.local_addr().ok(),
                    class: None,
                    message: None,
                });
                if stream.is_none() {
                    stream = Some(s);
                }
                if !plan.all {
                    break;
                }
            }
            Err((class, message)) => {
                attempts.push(TcpAttempt {
                    peer: addr,
                    ok: false,
                    duration_ms: ms(elapsed),
                    local: None,
                    class: Some(class),
                    message: Some(message.clone()),
                });
                if first_failure.is_none() {
                    first_failure = Some((class, message));
                }
                if class == FailureClass::Deadline {
                    break;
                }
            }
        }
    }

    let connected = attempts.iter().find(|a| a.ok);
    let evidence = TcpEvidence {
        peer: connected.or(attempts.last()).map(|a| a.peer),
        local: connected.and_then(|a| a.local),
        attempts: if attempts.len() > 1 {
            attempts.clone()
        } else {
            Vec::new()
        },
        settle_ms: settled.map(ms),
    };
    let all_ok = attempts.iter().all(|a| a.ok);
    // Stopping at the first address that connects is what a client does, so that is a
    // pass; with `all_addresses` every address must connect.
    let ok = if plan.all {
        all_ok && !attempts.is_empty()
    } else {
        stream.is_some()
    };
    if ok && !all_ok {
        for a in attempts.iter().filter(|a| !a.ok) {
            warnings.push(format!(
                "{} failed ({}) before another address connected: clients that try it first are delayed",
                a.peer,
                a.class.map(|c| c.as_str()).unwrap_or("?")
            ));
        }
    }
    let error = if ok {
        None
    } else {
        let (class, message) =
            first_failure.unwrap_or((FailureClass::TcpError, "no address to connect to".into()));
        let mut ctx = plan.ctx.clone();
        ctx.port = plan.addrs.first().map(|a| a.port());
        Some(diagnose::failure(Some(Layer::Tcp), class, message, &ctx))
    };
    Step {
        result: LayerResult {
            layer: Layer::Tcp,
            ok,
            start_ms: 0.0,
            // Connect time only: the settle window would otherwise read as a slow network.
            duration_ms: attempts.iter().map(|a| a.duration_ms).sum(),
            error,
            evidence: Evidence::Tcp(evidence),
        },
        next: if ok { stream } else { None },
        warnings,
    }
}

async fn open(addr: SocketAddr) -> Result<TcpStream, (FailureClass, String)> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| classify_io(&e, addr))?;
    let s = sock
        .connect(addr)
        .await
        .map_err(|e| classify_io(&e, addr))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Some middleboxes (and a private endpoint whose backend is gone) accept the handshake
/// and reset at once; a connect-only check calls that a pass. Peek briefly to catch it.
async fn settle(
    s: TcpStream,
    addr: SocketAddr,
    window: Duration,
) -> Result<TcpStream, (FailureClass, String)> {
    let mut buf = [0u8; 1];
    match tokio::time::timeout(window, s.peek(&mut buf)).await {
        Err(_) | Ok(Ok(1..)) => Ok(s),
        Ok(Ok(0)) => Err((
            FailureClass::TcpReset,
            format!("{addr} accepted the connection and closed it at once (FIN)"),
        )),
        Ok(Err(e)) => Err(classify_io(&e, addr)),
    }
}

pub fn classify_io(e: &std::io::Error, addr: SocketAddr) -> (FailureClass, String) {
    let class = match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => FailureClass::TcpRefused,
        Some(libc::ETIMEDOUT) => FailureClass::TcpTimeout,
        Some(libc::ECONNRESET) | Some(libc::ECONNABORTED) | Some(libc::EPIPE) => {
            FailureClass::TcpReset
        }
        Some(libc::ENETUNREACH)
        | Some(libc::EHOSTUNREACH)
        | Some(libc::ENETDOWN)
        | Some(libc::EHOSTDOWN)
        | Some(libc::EADDRNOTAVAIL)
        | Some(libc::EAFNOSUPPORT) => FailureClass::TcpUnreachable,
        Some(libc::EACCES) | Some(libc::EPERM) => FailureClass::TcpForbidden,
        _ => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => FailureClass::TcpRefused,
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                FailureClass::TcpReset
            }
            std::io::ErrorKind::TimedOut => FailureClass::TcpTimeout,
            std::io::ErrorKind::PermissionDenied => FailureClass::TcpForbidden,
            _ => FailureClass::TcpError,
        },
    };
    (class, format!("{addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let cases = [
            (libc::ECONNREFUSED, FailureClass::TcpRefused),
            (libc::ETIMEDOUT, FailureClass::TcpTimeout),
            (libc::ECONNRESET, FailureClass::TcpReset),
            (libc::ENETUNREACH, FailureClass::TcpUnreachable),
            (libc::EHOSTUNREACH, FailureClass::TcpUnreachable),
            (libc::EACCES, FailureClass::TcpForbidden),
            (libc::EPERM, FailureClass::TcpForbidden),
            (libc::EINVAL, FailureClass::TcpError),
        ];
        for (errno, want) in cases {
            let e = std::io::Error::from_raw_os_error(errno);
            assert_eq!(classify_io(&e, addr).0, want, "errno {errno}");
        }
    }
}
