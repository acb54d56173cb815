//! Authentication (cleartext, MD5, SCRAM-SHA-256 through `postgres-protocol`) and `SELECT 1`.

use postgres_protocol::authentication::{md5_hash, sasl};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Kind, Phase, Run, Step, fail, io_failure, wire};
use crate::probe::handshake::{self, Credential, printable};

impl Run<'_> {
    /// Handles the startup answer. `Ok(true)`: logged in, run the query; `Ok(false)`:
    /// credential-free and the server answered as PostgreSQL does.
    pub(super) async fn authenticate<T: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        s: &mut T,
        tag: u8,
        body: Vec<u8>,
    ) -> Step<bool> {
        let ph = Phase::Auth;
        let (mut tag, mut body) = (tag, body);
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            match tag {
                b'E' => {
                    let f = self.server_error(wire::parse_error(&body), ph);
                    // Credential-free, the probe user need not exist: an answer is enough.
                    if self.opts.credential == Credential::None && f.kind == Kind::UnknownUser {
                        return Ok(false);
                    }
                    return Err(f);
                }
                b'R' => {}
                other => {
                    return Err(fail(
                        if self.ev.auth_request.is_none() {
                            Kind::NotThisProtocol
                        } else {
                            Kind::ProtocolViolation { phase: ph }
                        },
                        format!(
                            "expected an authentication request, got message {:?}",
                            printable(&[other], 1)
                        ),
                    ));
                }
            }
            let code = wire::auth_code(&body)
                .ok_or_else(|| fail(Kind::ProtocolViolation { phase: ph }, "short auth message"))?;
            if self.ev.auth_request.is_none() {
                self.ev.auth_request = Some(wire::auth_name(code).into());
            }
            if code == wire::AUTH_SASL {
                self.ev.sasl_mechanisms = wire::cstrings(&body[4..]);
            }
            let reply: Option<Vec<u8>> = match code {
                wire::AUTH_OK => break,
                _ if self.opts.credential == Credential::None => return Ok(false),
                // A token in clear text is only ever sent inside TLS.
                wire::AUTH_CLEARTEXT
                    if self.opts.credential.is_token() && self.ev.tls.is_none() =>
                {
                    return Err(fail(
                        Kind::TokenNeedsTls,
                        "the server asked for the password in clear text on a connection without TLS: the Microsoft Entra token was not sent",
                    ));
                }
                wire::AUTH_CLEARTEXT => Some(wire::password(self.secret()?)),
                wire::AUTH_MD5 => {
                    let salt: [u8; 4] =
                        body.get(4..8)
                            .and_then(|b| b.try_into().ok())
                            .ok_or_else(|| {
                                fail(
                                    Kind::ProtocolViolation { phase: ph },
                                    "MD5 request without salt",
                                )
                            })?;
                    let h = md5_hash(self.opts.user.as_bytes(), self.secret()?, salt);
                    Some(wire::password(h.as_bytes()))
                }
                wire::AUTH_SASL => {
                    let mechs = &self.ev.sasl_mechanisms;
                    if !mechs.iter().any(|m| m == sasl::SCRAM_SHA_256) {
                        return Err(fail(
                            Kind::AuthUnsupported,
                            format!("the server offers SASL {mechs:?}, not SCRAM-SHA-256"),
                        ));
                    }
                    self.ev.sasl_mechanism_used = Some(sasl::SCRAM_SHA_256.into());
                    let sc =
                        sasl::ScramSha256::new(self.secret()?, sasl::ChannelBinding::unsupported());
                    let msg = wire::sasl_initial(sasl::SCRAM_SHA_256, sc.message());
                    scram = Some(sc);
                    Some(msg)
                }
                wire::AUTH_SASL_CONTINUE | wire::AUTH_SASL_FINAL => {
                    let Some(sc) = scram.as_mut() else {
                        return Err(fail(
                            Kind::ProtocolViolation { phase: ph },
                            "SASL continuation without a SASL start",
                        ));
                    };
                    let data = &body[4..];
                    if code == wire::AUTH_SASL_CONTINUE {
                        sc.update(data).map_err(|e| {
                            fail(Kind::ProtocolViolation { phase: ph }, format!("SCRAM: {e}"))
                        })?;
                        Some(wire::sasl_response(sc.message()))
                    } else {
                        sc.finish(data).map_err(|e| {
                            fail(
                                Kind::ProtocolViolation { phase: ph },
                                format!("SCRAM server signature: {e}"),
                            )
                        })?;
                        None
                    }
                }
                other => {
                    return Err(fail(
                        Kind::AuthUnsupported,
                        format!(
                            "the server asked for {} authentication (code {other}), which the probe does not do",
                            wire::auth_name(other)
                        ),
                    ));
                }
            };
            if let Some(reply) = reply {
                handshake::write_all(s, &reply, self.deadline)
                    .await
                    .map_err(|e| io_failure(ph, e))?;
            }
            (tag, body) = self.next(s, ph).await?;
        }
        self.ev.authenticated = true;
        // ParameterStatus and BackendKeyData until ReadyForQuery.
        loop {
            let (tag, body) = self.next(s, ph).await?;
            match tag {
                b'S' => {
                    let kv = wire::cstrings(&body);
                    if let [k, v, ..] = kv.as_slice() {
                        self.ev.server_params.insert(k.clone(), v.clone());
                    }
                }
                b'K' => {}
                b'Z' => return Ok(true),
                b'E' => return Err(self.server_error(wire::parse_error(&body), ph)),
                _ => {}
            }
        }
    }

    pub(super) async fn query<T: AsyncRead + AsyncWrite + Unpin>(&mut self, s: &mut T) -> Step<()> {
        let ph = Phase::Query;
        handshake::write_all(s, &wire::query("SELECT 1"), self.deadline)
            .await
            .map_err(|e| io_failure(ph, e))?;
        let mut failure = None;
        loop {
            let (tag, body) = self.next(s, ph).await?;
            match tag {
                b'D' if self.ev.query_result.is_none() => {
                    self.ev.query_result = wire::first_column(&body);
                }
                b'E' => {
                    let e = wire::parse_error(&body);
                    failure = Some(fail(
                        Kind::QueryFailed,
                        format!("SELECT 1 failed: {} ({})", e.message, e.sqlstate),
                    ));
                    self.ev.error = Some(e);
                }
                b'Z' => break,
                _ => {}
            }
        }
        // Terminate: a polite goodbye, best effort.
        let _ = handshake::write_all(s, &wire::TERMINATE, self.deadline).await;
        failure.map_or(Ok(()), Err)
    }

    fn secret(&self) -> Step<&[u8]> {
        self.opts
            .credential
            .secret()
            .map(|s| s.expose().as_bytes())
            .ok_or_else(|| {
                fail(
                    Kind::ProtocolViolation { phase: Phase::Auth },
                    "no credential",
                )
            })
    }
}
