//! The Kafka exchange: one request at a time under the deadline (ApiVersions, then the
//! SASL handshake and authentication, then Metadata), and what each answer means.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::scram;
use super::wire::{self, Reader, request};
use super::{
    API_METADATA, API_SASL_AUTHENTICATE, API_SASL_HANDSHAKE, API_VERSIONS, ApiRange, Credentials,
    ErrorKind, Evidence, Fail, MAX_RESPONSE, Options, Phase, Timing, classify, fail,
};
use crate::probe::amqp;

pub(super) struct Conn<'a> {
    pub io: Box<dyn amqp::IoStream + 'a>,
    pub deadline: Instant,
    pub ev: Evidence,
    pub phase: Phase,
    pub started: Instant,
    pub correlation: i32,
    pub client_id: String,
}

impl Conn<'_> {
    fn begin(&mut self, phase: Phase) {
        self.phase = phase;
        self.started = Instant::now();
    }

    fn done(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.ev.timings.push(Timing {
            phase: self.phase,
            ms: (ms * 1000.0).round() / 1000.0,
        });
    }

    /// Sends one request and returns the response body after the correlation id.
    async fn call(&mut self, key: i16, version: i16, body: &[u8]) -> Result<Vec<u8>, Fail> {
        self.correlation += 1;
        let corr = self.correlation;
        let bytes = request(key, version, corr, &self.client_id, body);
        let io = &mut self.io;
        let sent = tokio::time::timeout_at(self.deadline, async {
            io.write_all(&bytes).await?;
            io.flush().await
        })
        .await;
        match sent {
            Err(_) => return fail(ErrorKind::Timeout, "deadline reached while sending"),
            Ok(Err(e)) => return io_fail(e),
            Ok(Ok(())) => {}
        }
        let mut size = [0u8; 4];
        let mut n = 0;
        while n < 4 {
            let io = &mut self.io;
            let got = match tokio::time::timeout_at(self.deadline, io.read(&mut size[n..])).await {
                Err(_) if n == 0 => {
                    return fail(
                        ErrorKind::Timeout,
                        "nothing answered the Kafka request before the deadline",
                    );
                }
                Err(_) => return fail(ErrorKind::Timeout, "the answer stopped before its size"),
                Ok(Err(e)) => return io_fail(e),
                Ok(Ok(g)) => g,
            };
            if got == 0 {
                return match n {
                    0 => fail(
                        ErrorKind::Closed,
                        "the server closed the connection without answering",
                    ),
                    _ => fail(
                        ErrorKind::NotThisProtocol,
                        format!("the server sent {} and closed", amqp::printable(&size[..n])),
                    ),
                };
            }
            n += got;
            // A Kafka answer this small starts with a zero byte; anything else is not Kafka.
            if size[0] != 0 {
                return fail(ErrorKind::NotThisProtocol, foreign(&size[..n]));
            }
        }
        let len = u32::from_be_bytes(size) as usize;
        if !(4..=MAX_RESPONSE).contains(&len) {
            return fail(
                ErrorKind::NotThisProtocol,
                format!("answer size {len} is not a Kafka response"),
            );
        }
        let mut buf = vec![0u8; len];
        let io = &mut self.io;
        match tokio::time::timeout_at(self.deadline, io.read_exact(&mut buf)).await {
            Err(_) => return fail(ErrorKind::Timeout, "deadline reached inside the answer"),
            Ok(Err(e)) => return io_fail(e),
            Ok(Ok(_)) => {}
        }
        let got = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if got != corr {
            return fail(
                ErrorKind::NotThisProtocol,
                format!("answer carries correlation id {got}, not {corr}"),
            );
        }
        buf.drain(..4);
        Ok(buf)
    }

    fn broker_error(&mut self, code: i16) {
        if code != 0 {
            self.ev.broker_error_codes.push(code);
        }
    }
}

fn foreign(b: &[u8]) -> String {
    let what = if b.starts_with(b"HTT") || b.starts_with(b"H") {
        "an HTTP server answered"
    } else if b.first() == Some(&0x15) {
        "a TLS server answered with an alert (this port expects TLS first)"
    } else {
        "something other than Kafka answered"
    };
    format!("{what}: {}", amqp::printable(b))
}

fn io_fail<T>(e: std::io::Error) -> Result<T, Fail> {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => fail(
            ErrorKind::Closed,
            format!("the server closed the connection ({e})"),
        ),
        _ => fail(ErrorKind::Io, e.to_string()),
    }
}

fn decode_err(what: &str) -> impl Fn(wire::Short) -> Fail + '_ {
    move |_| Fail {
        kind: ErrorKind::ProtocolError,
        message: format!("the {what} answer does not decode"),
    }
}

pub(super) async fn run(c: &mut Conn<'_>, opts: &Options) -> Result<(), Fail> {
    c.begin(Phase::ApiVersions);
    let body = c.call(API_VERSIONS, 0, &[]).await?;
    let mut r = Reader::new(&body);
    let err = r.i16().map_err(decode_err("ApiVersions"))?;
    c.ev.api_versions_error = Some(err);
    c.broker_error(err);
    let n = r.array_len().map_err(decode_err("ApiVersions"))?;
    for _ in 0..n {
        let key = r.i16().map_err(decode_err("ApiVersions"))?;
        let min = r.i16().map_err(decode_err("ApiVersions"))?;
        let max = r.i16().map_err(decode_err("ApiVersions"))?;
        c.ev.apis.push(ApiRange { key, min, max });
    }
    let keys = c.ev.apis.iter().map(|a| a.key);
    c.ev.api_key_range = keys.clone().min().zip(keys.max());
    if err != 0 {
        return fail(
            classify(err, ""),
            format!("ApiVersions answered error {err}"),
        );
    }
    c.done();

    let mut scram = None;
    let (mechanism, auth, empty) = match &opts.credentials {
        Credentials::None => return Ok(()),
        Credentials::Plain { user, password } => (
            "PLAIN",
            plain(user, password.expose()),
            password.expose().is_empty(),
        ),
        Credentials::ConnectionString(s) => (
            "PLAIN",
            plain("$ConnectionString", s.expose()),
            s.expose().is_empty(),
        ),
        Credentials::Bearer(t) => (
            "OAUTHBEARER",
            format!("n,,\x01auth=Bearer {}\x01\x01", t.expose()).into_bytes(),
            t.expose().is_empty(),
        ),
        Credentials::Scram {
            mechanism,
            user,
            password,
        } => {
            let client = scram::Client::new(*mechanism, user);
            let first = client.first();
            scram = Some((client, password.expose()));
            (mechanism.name(), first, password.expose().is_empty())
        }
    };
    if empty {
        return fail(ErrorKind::BadCredentials, "the credential is empty");
    }
    c.ev.mechanism = Some(mechanism.into());

    c.begin(Phase::SaslHandshake);
    if c.ev.api(API_SASL_HANDSHAKE).is_none_or(|a| a.max < 1) {
        return fail(
            ErrorKind::Unsupported,
            "the broker does not list SaslHandshake v1",
        );
    }
    let mut b = Vec::new();
    wire::string(&mut b, mechanism);
    let body = c.call(API_SASL_HANDSHAKE, 1, &b).await?;
    let mut r = Reader::new(&body);
    let err = r.i16().map_err(decode_err("SaslHandshake"))?;
    c.broker_error(err);
    let n = r.array_len().map_err(decode_err("SaslHandshake"))?;
    for _ in 0..n {
        let m = r.string().map_err(decode_err("SaslHandshake"))?;
        c.ev.mechanisms.push(m.unwrap_or_default());
    }
    if err != 0 {
        return fail(
            classify(err, ""),
            format!(
                "SaslHandshake {mechanism} refused: error {err} (enabled: {})",
                c.ev.mechanisms.join(", ")
            ),
        );
    }
    c.done();

    c.begin(Phase::SaslAuthenticate);
    let v = match c.ev.api(API_SASL_AUTHENTICATE) {
        Some(a) if a.max >= 1 && a.min <= 1 => 1,
        Some(a) if a.min == 0 => 0,
        _ => {
            return fail(
                ErrorKind::Unsupported,
                "the broker does not list SaslAuthenticate v0 or v1",
            );
        }
    };
    let answer = authenticate(c, v, mechanism, &auth).await?;
    if let Some((mut client, password)) = scram {
        // SCRAM's second round: the proof, then the server's signature.
        let scram_fail = |e: scram::ScramError| Fail {
            kind: match e {
                scram::ScramError::Refused(_) => ErrorKind::AuthFailed,
                scram::ScramError::Malformed(_) => ErrorKind::ProtocolError,
            },
            message: e.text().to_string(),
        };
        let fin = client.answer(&answer, password).map_err(scram_fail)?;
        let last = authenticate(c, v, mechanism, &fin).await?;
        client.verify(&last).map_err(scram_fail)?;
    }
    c.done();

    c.begin(Phase::Metadata);
    let body = c.call(API_METADATA, 1, &0i32.to_be_bytes()).await?;
    let mut r = Reader::new(&body);
    let n = r.array_len().map_err(decode_err("Metadata"))?;
    for _ in 0..n {
        let _node = r.i32().map_err(decode_err("Metadata"))?;
        let host = r
            .string()
            .map_err(decode_err("Metadata"))?
            .unwrap_or_default();
        let port = r.i32().map_err(decode_err("Metadata"))?;
        let _rack = r.string().map_err(decode_err("Metadata"))?;
        c.ev.brokers.push(format!("{host}:{port}"));
    }
    c.ev.controller_id = r.i32().ok();
    c.done();
    Ok(())
}

/// One `SaslAuthenticate` round: sends `auth`, returns the broker's auth bytes.
async fn authenticate(
    c: &mut Conn<'_>,
    v: i16,
    mechanism: &str,
    auth: &[u8],
) -> Result<Vec<u8>, Fail> {
    let mut b = Vec::new();
    wire::bytes(&mut b, auth);
    let body = c.call(API_SASL_AUTHENTICATE, v, &b).await?;
    let mut r = Reader::new(&body);
    let err = r.i16().map_err(decode_err("SaslAuthenticate"))?;
    let msg = r.string().map_err(decode_err("SaslAuthenticate"))?;
    c.broker_error(err);
    c.ev.sasl_error_message = msg.clone();
    if err != 0 {
        let m = msg.unwrap_or_default();
        return fail(
            classify(err, &m),
            format!("SaslAuthenticate {mechanism} refused: error {err}: {m}"),
        );
    }
    let answer = r.bytes().map_err(decode_err("SaslAuthenticate"))?;
    if v >= 1 {
        c.ev.session_lifetime_ms = r.i64().ok();
    }
    Ok(answer.unwrap_or_default().to_vec())
}

fn plain(user: &str, password: &str) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend(user.as_bytes());
    v.push(0);
    v.extend(password.as_bytes());
    v
}
