//! Redis protocol probe (Azure Cache for Redis on 6380, Azure Managed Redis on 10000), on
//! the connection the TCP layer proved.
//!
//! TLS first (Azure's ports are TLS-only), then `PING` in RESP2. `+PONG` and `-NOAUTH`
//! both prove Redis answered; an `-ERR`/`-DENIED` text is recorded and classified. With
//! credentials: `AUTH [user] <secret>` then `PING`. A Microsoft Entra token goes in as
//! `AUTH <object id> <token>` (user = the identity's object id). Written by hand: three
//! commands of a few bytes each; the `redis` crate could run on this stream
//! (`MultiplexedConnection::new`) but would add a connection manager for no evidence.
//!
//! | kind | suggested class | hint's decisive content |
//! |---|---|---|
//! | `NotThisProtocol` | `redis.not_redis` | the port answered with something that is not RESP |
//! | `Timeout{ping}` | `redis.no_answer` | connection (and TLS) accepted, PING never answered |
//! | `TlsRefusedByServer` | `redis.tls_refused` | the server answered the ClientHello in plain text: a non-TLS port (6379); Azure: use 6380 (Cache) / 10000 (Managed Redis) |
//! | `TlsFailed` | `redis.tls_failed` | certificate/name: `<name>.redis.cache.windows.net` / `<name>.<region>.redis.azure.net` |
//! | `PlaintextRefused` | `redis.plaintext_refused` | plain text to a TLS-only port: the server closed; Azure's non-TLS port 6379 is disabled by default |
//! | `AuthFailed` | `redis.auth_failed` | `-WRONGPASS`: wrong access key / ACL password, or unknown user |
//! | `TokenRejected` | `redis.token_rejected` | `-WRONGPASS` with a token: user must be the identity's object id, token for `https://redis.azure.com/.default`, Entra auth enabled, an access policy assigned |
//! | `TokenExpired` | `redis.token_expired` | the server says the token expired: fetch a fresh one |
//! | `TokenNeedsTls` | `redis.token_needs_tls` | a token would go to AUTH without TLS: not sent (Azure's Entra auth is TLS-only) |
//! | `NoPermission` | `redis.no_permission` | `-NOPERM`: the ACL user may not run PING |
//! | `ProtectedMode` | `redis.protected_mode` | `-DENIED`: protected mode, no password set |
//! | `ServerFirewall` | `redis.firewall` | the server refused our address (firewall rules / public network access disabled) |
//! | `Loading` | `redis.loading` | `-LOADING`: the server is loading its dataset |
//! | `ServerError` | `redis.server_error` | another error reply: see the text |
//! | `Closed{phase}` / `Timeout{phase}` / `Io{phase}` / `ProtocolViolation{phase}` | `redis.closed` / `redis.timeout` / `redis.io` / `redis.protocol` | the phase in the kind |

use std::fmt;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handshake::{
    self, Credential, IoFail, IoStop, TlsInfo, TlsMode, TlsUpgrade, UpgradeErrorKind, ms, printable,
};

mod layer;
pub use layer::{Ran, RedisStep, class, run};

#[derive(Debug, Clone)]
pub struct Options {
    pub tls: TlsMode,
    /// The ACL user for `AUTH user secret`; `None` sends `AUTH secret` (the `default`
    /// user: an Azure access key). For a token, the identity's object id.
    pub user: Option<String>,
    pub credential: Credential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Tls,
    Ping,
    Auth,
    PingAfterAuth,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Tls => "TLS handshake",
            Phase::Ping => "PING",
            Phase::Auth => "AUTH",
            Phase::PingAfterAuth => "PING after AUTH",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Kind {
    NotThisProtocol,
    TlsRefusedByServer,
    TlsFailed,
    PlaintextRefused,
    AuthFailed,
    TokenRejected,
    TokenExpired,
    TokenNeedsTls,
    NoPermission,
    ProtectedMode,
    ServerFirewall,
    Loading,
    ServerError,
    ProtocolViolation { phase: Phase },
    Closed { phase: Phase },
    Timeout { phase: Phase },
    Io { phase: Phase },
}

impl Kind {
    pub fn class(&self) -> &'static str {
        layer::class(self).as_str()
    }
}

pub type Failure = crate::probe::step::Failure<Kind>;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_after_auth_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    pub credential: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The reply to the first PING, verbatim: `+PONG`, `-NOAUTH Authentication required.`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_reply: Option<String>,
    /// Whether the server wanted AUTH before PING (`-NOAUTH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_after_auth: Option<String>,
    pub authenticated: bool,
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Redis answered in RESP (any reply, error replies included).
    pub reached: bool,
    pub evidence: Evidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

type Step<T> = Result<T, Failure>;

fn fail(kind: Kind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

struct Run<'a> {
    opts: &'a Options,
    deadline: Instant,
    ev: Evidence,
    reached: bool,
}

pub async fn probe<S, U>(stream: S, opts: &Options, upgrade: U, deadline: Instant) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    U: TlsUpgrade<S>,
{
    let mut run = Run {
        opts,
        deadline,
        ev: Evidence {
            credential: opts.credential.label(),
            user: opts.user.clone(),
            ..Default::default()
        },
        reached: false,
    };
    let res = if opts.tls.enabled() {
        let t0 = Instant::now();
        let up = upgrade.upgrade(stream, deadline).await;
        run.ev.timings.tls_ms = Some(ms(t0.elapsed()));
        match up {
            Ok((tls, info)) => {
                run.ev.tls = Some(info);
                run.session(tls).await
            }
            Err(e) => Err(fail(
                match e.kind {
                    UpgradeErrorKind::NotTls => Kind::TlsRefusedByServer,
                    UpgradeErrorKind::Handshake => Kind::TlsFailed,
                    UpgradeErrorKind::Closed => Kind::Closed { phase: Phase::Tls },
                    UpgradeErrorKind::Timeout => Kind::Timeout { phase: Phase::Tls },
                },
                e.message,
            )),
        }
    } else {
        run.session(stream).await
    };
    Outcome {
        reached: run.reached,
        evidence: run.ev,
        failure: res.err(),
    }
}

/// One RESP2 reply, reduced to what the probe needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Other(String),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Simple(s) => format!("+{s}"),
            Reply::Error(s) => format!("-{s}"),
            Reply::Other(s) => s.clone(),
        }
    }
}

impl Run<'_> {
    async fn session<T: AsyncRead + AsyncWrite + Unpin>(&mut self, mut s: T) -> Step<()> {
        let t0 = Instant::now();
        let first = self.command(&mut s, &[b"PING"], Phase::Ping).await;
        self.ev.timings.ping_ms = Some(ms(t0.elapsed()));
        let first = first?;
        self.ev.ping_reply = Some(first.text());
        match &first {
            Reply::Simple(_) | Reply::Other(_) => self.ev.auth_required = Some(false),
            Reply::Error(e) if e.starts_with("NOAUTH") => self.ev.auth_required = Some(true),
            Reply::Error(e) => return Err(self.classify(e, Phase::Ping)),
        }
        let Some(secret) = self.opts.credential.secret() else {
            return Ok(());
        };
        if self.opts.credential.is_token() && self.ev.tls.is_none() {
            return Err(fail(
                Kind::TokenNeedsTls,
                "AUTH: the connection has no TLS; the Microsoft Entra token was not sent",
            ));
        }
        let t0 = Instant::now();
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = &self.opts.user {
            args.push(u.as_bytes());
        }
        args.push(secret.expose().as_bytes());
        let auth = self.command(&mut s, &args, Phase::Auth).await;
        self.ev.timings.auth_ms = Some(ms(t0.elapsed()));
        let auth = auth?;
        self.ev.auth_reply = Some(auth.text());
        if let Reply::Error(e) = &auth {
            return Err(self.classify(e, Phase::Auth));
        }
        self.ev.authenticated = true;
        let t0 = Instant::now();
        let ping = self.command(&mut s, &[b"PING"], Phase::PingAfterAuth).await;
        self.ev.timings.ping_after_auth_ms = Some(ms(t0.elapsed()));
        let ping = ping?;
        self.ev.ping_after_auth = Some(ping.text());
        if let Reply::Error(e) = &ping {
            return Err(self.classify(e, Phase::PingAfterAuth));
        }
        Ok(())
    }

    async fn command<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut T,
        args: &[&[u8]],
        phase: Phase,
    ) -> Step<Reply> {
        let io = |e: IoFail| {
            let kind = match e.stop {
                IoStop::Timeout => Kind::Timeout { phase },
                IoStop::Closed if phase == Phase::Ping && !self.opts.tls.enabled() => {
                    Kind::PlaintextRefused
                }
                IoStop::Closed => Kind::Closed { phase },
                IoStop::Other => Kind::Io { phase },
            };
            let msg = if kind == Kind::PlaintextRefused {
                format!(
                    "{phase}: the server closed the connection on a plain-text command ({}): a TLS-only port",
                    e.message
                )
            } else {
                format!("{phase}: {}", e.message)
            };
            fail(kind, msg)
        };
        handshake::write_all(s, &encode(args), self.deadline)
            .await
            .map_err(io)?;
        let reply = read_reply(s, self.deadline).await;
        match reply {
            Ok(r) => {
                self.reached = true;
                Ok(r)
            }
            Err(ReadErr::Io(e)) => Err(io(e)),
            Err(ReadErr::Garbage(what)) if !self.reached => Err(fail(
                Kind::NotThisProtocol,
                format!("the answer to PING is not Redis (RESP): it began {what:?}"),
            )),
            Err(ReadErr::Garbage(what)) => Err(fail(
                Kind::ProtocolViolation { phase },
                format!("malformed reply: {what:?}"),
            )),
        }
    }

    fn classify(&self, e: &str, phase: Phase) -> Failure {
        let word = e.split_whitespace().next().unwrap_or("");
        let lower = e.to_ascii_lowercase();
        let token = self.opts.credential.is_token();
        let kind = match word {
            _ if lower.contains("expired") => Kind::TokenExpired,
            "WRONGPASS" if token => Kind::TokenRejected,
            "WRONGPASS" => Kind::AuthFailed,
            // Redis before 6 (and `requirepass` without ACL users) says "invalid password".
            "ERR" if lower.contains("invalid password") || lower.contains("invalid username") => {
                if token {
                    Kind::TokenRejected
                } else {
                    Kind::AuthFailed
                }
            }
            "NOPERM" => Kind::NoPermission,
            "DENIED" => Kind::ProtectedMode,
            "LOADING" => Kind::Loading,
            _ if lower.contains("firewall")
                || lower.contains("public network access")
                || lower.contains("not allowed to connect") =>
            {
                Kind::ServerFirewall
            }
            _ => Kind::ServerError,
        };
        fail(kind, format!("{phase}: the server replied -{e}"))
    }
}

/// A RESP2 array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub enum ReadErr {
    Io(IoFail),
    Garbage(String),
}

const MAX_LINE: usize = 4096;

/// Reads one reply line by line (bulk strings are read to their length). Error and
/// status lines are at most a few hundred bytes; a longer line is not a Redis reply to
/// PING or AUTH.
pub async fn read_reply<S: AsyncRead + Unpin>(
    s: &mut S,
    deadline: Instant,
) -> Result<Reply, ReadErr> {
    let line = read_line(s, deadline).await?;
    let (&t, rest) = line
        .split_first()
        .ok_or_else(|| ReadErr::Garbage("an empty line".into()))?;
    let text = printable(rest, 512);
    match t {
        b'+' => Ok(Reply::Simple(text)),
        b'-' => Ok(Reply::Error(text)),
        b':' => Ok(Reply::Other(format!(":{text}"))),
        b'$' => {
            let n: i64 = text
                .parse()
                .map_err(|_| ReadErr::Garbage(printable(&line, 32)))?;
            if n < 0 {
                return Ok(Reply::Other("(nil)".into()));
            }
            if n as usize > MAX_LINE {
                return Err(ReadErr::Garbage(format!("a bulk string of {n} bytes")));
            }
            let mut buf = vec![0u8; n as usize + 2];
            handshake::read_exact(s, &mut buf, deadline)
                .await
                .map_err(ReadErr::Io)?;
            Ok(Reply::Other(printable(&buf[..n as usize], 512)))
        }
        b'*' if text.parse::<i64>().is_ok() => Ok(Reply::Other(format!("array of {text}"))),
        _ => Err(ReadErr::Garbage(printable(&line, 32))),
    }
}

/// One CRLF-terminated line, byte by byte: replies here are short, and reading past the
/// line would swallow the next reply.
async fn read_line<S: AsyncRead + Unpin>(s: &mut S, deadline: Instant) -> Result<Vec<u8>, ReadErr> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        handshake::read_exact(s, &mut b, deadline)
            .await
            .map_err(ReadErr::Io)?;
        if line.is_empty() && !b"+-:$*%_,#!=(|>~".contains(&b[0]) {
            // Not RESP from the first byte: say so without waiting for a line end.
            let mut more = [0u8; 31];
            let n = handshake::read_some(s, &mut more, deadline)
                .await
                .unwrap_or(0);
            let mut head = vec![b[0]];
            head.extend_from_slice(&more[..n]);
            return Err(ReadErr::Garbage(printable(&head, 32)));
        }
        if b[0] == b'\n' && line.last() == Some(&b'\r') {
            line.pop();
            return Ok(line);
        }
        line.push(b[0]);
        if line.len() > MAX_LINE {
            return Err(ReadErr::Garbage(printable(&line, 32)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_resp_arrays() {
        assert_eq!(encode(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encode(&[b"AUTH", b"u", b"pw"]),
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$2\r\npw\r\n"
        );
    }

    #[tokio::test]
    async fn reads_replies_and_refuses_garbage() {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut r: &[u8] = b"-NOAUTH Authentication required.\r\n+PONG\r\n$5\r\nalice\r\n";
        assert_eq!(
            read_reply(&mut r, deadline).await.ok(),
            Some(Reply::Error("NOAUTH Authentication required.".into()))
        );
        assert_eq!(
            read_reply(&mut r, deadline).await.ok(),
            Some(Reply::Simple("PONG".into()))
        );
        assert_eq!(
            read_reply(&mut r, deadline).await.ok(),
            Some(Reply::Other("alice".into()))
        );
        let mut r: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";
        assert!(
            matches!(read_reply(&mut r, deadline).await, Err(ReadErr::Garbage(g)) if g.starts_with("HTTP/1.1"))
        );
    }
}
