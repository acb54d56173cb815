//! The login attempt (HandshakeResponse41 and the auth-switch loop) and `SELECT 1`.

use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::{self, CACHING_SHA2, CLEAR, NATIVE};
use super::{Failure, Kind, Phase, Run, Step, fail, io_failure};
use crate::probe::handshake::{self, Credential, printable};

/// Auth exchanges end in two or three round trips; more is a confused server.
const MAX_ROUNDS: usize = 6;

fn read_failure(phase: Phase, e: wire::ReadErr) -> Failure {
    match e {
        wire::ReadErr::Io(e) => io_failure(phase, e),
        wire::ReadErr::Garbage(head) => fail(
            Kind::ProtocolViolation { phase },
            format!("a malformed packet header {head:?}"),
        ),
    }
}

fn with_nul(secret: &[u8]) -> Vec<u8> {
    let mut v = secret.to_vec();
    v.push(0);
    v
}

impl Run<'_> {
    async fn send<T: AsyncWrite + Unpin>(&self, t: &mut T, seq: u8, payload: &[u8]) -> Step<()> {
        handshake::write_all(t, &wire::packet(seq, payload), self.deadline)
            .await
            .map_err(|e| io_failure(Phase::Login, e))
    }

    /// `Ok(true)`: logged in with credentials, run the query. `Ok(false)`: credential-free
    /// and the server answered the attempt (1045, or OK for an anonymous account).
    pub(super) async fn login<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        t: &mut T,
        g: &wire::Greeting,
        caps: u32,
        seq: u8,
    ) -> Step<bool> {
        let ph = Phase::Login;
        let tls = self.ev.tls.is_some();
        let creds = !matches!(self.opts.credential, Credential::None);
        let secret: Vec<u8> = self
            .opts
            .credential
            .secret()
            .map(|s| s.expose().as_bytes().to_vec())
            .unwrap_or_default();
        let cleartext_refused = || {
            fail(
                Kind::CleartextNeedsTls,
                "the server asked for the clear-text plugin on a connection without TLS: the probe does not send a secret in clear text",
            )
        };
        let (plugin, data) = match (&self.opts.credential, g.auth_plugin.as_deref()) {
            // Azure's Entra login: the token through the clear-text plugin, inside TLS.
            (Credential::Token(_), _) if !tls => return Err(cleartext_refused()),
            (Credential::Token(_), _) => (CLEAR, with_nul(&secret)),
            (_, Some(CACHING_SHA2)) => (CACHING_SHA2, wire::sha2_scramble(&secret, &g.scramble)),
            _ => (NATIVE, wire::native_scramble(&secret, &g.scramble)),
        };
        self.ev.auth_plugins.push(plugin.into());
        let hello = wire::handshake_response(
            caps,
            &self.opts.user,
            &data,
            self.opts.database.as_deref(),
            plugin,
        );
        self.send(t, seq, &hello).await?;
        let mut current = plugin.to_string();
        for _ in 0..MAX_ROUNDS {
            let (s, body) = wire::read_packet(t, self.deadline, false)
                .await
                .map_err(|e| read_failure(ph, e))?;
            let next = s.wrapping_add(1);
            match body.first() {
                Some(0x00) => {
                    self.ev.authenticated = true;
                    return Ok(creds);
                }
                Some(0xff) => {
                    let f = self.server_error(&body, ph);
                    let code = self.ev.error.as_ref().map(|e| e.code);
                    if !creds && matches!(code, Some(1045 | 1698)) {
                        // The expected answer to a probe user: MySQL answered and named us.
                        return Ok(false);
                    }
                    return Err(f);
                }
                Some(0xfe) => {
                    let Some((name, scramble)) = wire::parse_switch(&body) else {
                        return Err(fail(
                            Kind::AuthUnsupported,
                            "the server asked for the pre-4.1 password scheme",
                        ));
                    };
                    let resp = match name.as_str() {
                        NATIVE => wire::native_scramble(&secret, &scramble),
                        CACHING_SHA2 => wire::sha2_scramble(&secret, &scramble),
                        CLEAR if !tls => return Err(cleartext_refused()),
                        CLEAR => with_nul(&secret),
                        other => {
                            return Err(fail(
                                Kind::AuthUnsupported,
                                format!(
                                    "the server switched to auth plugin {other:?}, which the probe does not do"
                                ),
                            ));
                        }
                    };
                    self.ev.auth_plugins.push(name.clone());
                    current = name;
                    self.send(t, next, &resp).await?;
                }
                Some(0x01) if current == CACHING_SHA2 => match body.get(1) {
                    Some(3) => {} // fast auth succeeded; OK follows
                    Some(4) if tls => self.send(t, next, &with_nul(&secret)).await?,
                    Some(4) => {
                        return Err(fail(
                            Kind::AuthUnsupported,
                            "caching_sha2_password wants full authentication, which without TLS needs the server's RSA key: connect with TLS",
                        ));
                    }
                    _ => {
                        return Err(fail(
                            Kind::ProtocolViolation { phase: ph },
                            "unexpected caching_sha2_password data",
                        ));
                    }
                },
                other => {
                    return Err(fail(
                        Kind::ProtocolViolation { phase: ph },
                        format!("unexpected login packet starting {other:?} (plugin {current})"),
                    ));
                }
            }
        }
        Err(fail(
            Kind::ProtocolViolation { phase: ph },
            "the authentication exchange did not end",
        ))
    }

    async fn read_query_packet<T: AsyncRead + Unpin>(&self, t: &mut T) -> Step<Vec<u8>> {
        wire::read_packet(t, self.deadline, false)
            .await
            .map(|(_, b)| b)
            .map_err(|e| read_failure(Phase::Query, e))
    }

    pub(super) async fn query<T: AsyncRead + AsyncWrite + Unpin>(&mut self, t: &mut T) -> Step<()> {
        let ph = Phase::Query;
        handshake::write_all(t, &wire::com_query("SELECT 1"), self.deadline)
            .await
            .map_err(|e| io_failure(ph, e))?;
        let first = self.read_query_packet(t).await?;
        match first.first() {
            Some(0xff) => {
                let f = self.server_error(&first, ph);
                return Err(fail(Kind::QueryFailed, f.message));
            }
            Some(0x00) => return Ok(()),
            _ => {}
        }
        let (cols, _) = wire::read_lenenc(&first)
            .ok_or_else(|| fail(Kind::ProtocolViolation { phase: ph }, "bad column count"))?;
        // Column definitions, then the EOF packet (CLIENT_DEPRECATE_EOF is not asked for).
        for _ in 0..=cols.min(64) {
            self.read_query_packet(t).await?;
        }
        for _ in 0..1000 {
            let row = self.read_query_packet(t).await?;
            match row.first() {
                Some(0xfe) if row.len() < 9 => return Ok(()),
                Some(0xff) => {
                    let f = self.server_error(&row, ph);
                    return Err(fail(Kind::QueryFailed, f.message));
                }
                Some(0xfb) => {
                    self.ev.query_result.get_or_insert_with(|| "NULL".into());
                }
                _ => {
                    if self.ev.query_result.is_none()
                        && let Some((n, at)) = wire::read_lenenc(&row)
                    {
                        let end = (at + n as usize).min(row.len());
                        self.ev.query_result = Some(printable(&row[at..end], 256));
                    }
                }
            }
        }
        Err(fail(
            Kind::ProtocolViolation { phase: ph },
            "SELECT 1 returned more than 1000 rows",
        ))
    }
}
