//! The client side of SASL SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, with RFC 7677's
//! SHA-256 profile), as Kafka brokers run it inside two `SaslAuthenticate` rounds (KIP-84):
//! client-first `n,,n=USER,r=NONCE`, the server's `r=,s=,i=`, client-final with the proof,
//! and the server's signature `v=`, which the probe checks (a server that cannot sign
//! does not hold the user's key). HMAC, PBKDF2, the digest and the nonce come from
//! aws-lc-rs, the TLS provider the binary already carries; no channel binding (`n,,`).

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2, rand::SecureRandom};
use base64::Engine as _;
use serde::Serialize;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// More iterations than any broker uses (Kafka accepts 4096 to 16384): a bound on the
/// work a server can make the probe do.
const MAX_ITERATIONS: u32 = 65_536;

/// The SCRAM hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scram {
    Sha256,
    Sha512,
}

impl Scram {
    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Scram::Sha256 => "SCRAM-SHA-256",
            Scram::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Scram::Sha256 => hmac::HMAC_SHA256,
            Scram::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Scram::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Scram::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Scram::Sha256 => &digest::SHA256,
            Scram::Sha512 => &digest::SHA512,
        }
    }
}

/// Why the exchange stopped: the server refused it (`e=`), or its message was wrong.
#[derive(Debug)]
pub(super) enum ScramError {
    Refused(String),
    Malformed(String),
}

impl ScramError {
    pub fn text(&self) -> &str {
        match self {
            ScramError::Refused(m) | ScramError::Malformed(m) => m,
        }
    }
}

fn bad<T>(m: impl Into<String>) -> Result<T, ScramError> {
    Err(ScramError::Malformed(m.into()))
}

/// One SCRAM exchange in progress.
pub(super) struct Client {
    mech: Scram,
    nonce: String,
    first_bare: String,
    server_signature: Vec<u8>,
}

/// RFC 5802 `saslname`: `=` and `,` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn sign(mech: Scram, key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(mech.hmac(), key), data)
        .as_ref()
        .to_vec()
}

impl Client {
    /// A new exchange for `user` with a random nonce.
    pub fn new(mech: Scram, user: &str) -> Client {
        let mut raw = [0u8; 24];
        // The system RNG does not fail on Linux; a zero nonce would still be a valid
        // (if predictable) exchange.
        let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut raw);
        Client::with_nonce(mech, user, &B64.encode(raw))
    }

    fn with_nonce(mech: Scram, user: &str, nonce: &str) -> Client {
        Client {
            mech,
            nonce: nonce.to_string(),
            first_bare: format!("n={},r={nonce}", saslname(user)),
            server_signature: Vec::new(),
        }
    }

    /// client-first-message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// client-final-message for the server's first message; the error says what in
    /// the server's message was wrong (never the password).
    pub fn answer(&mut self, server_first: &[u8], password: &str) -> Result<Vec<u8>, ScramError> {
        let Ok(text) = std::str::from_utf8(server_first) else {
            return bad("the server's first SCRAM message is not UTF-8");
        };
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::Refused(format!(
                "the server refused the SCRAM exchange: {e}"
            )));
        }
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = B64.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return bad("the server's first SCRAM message lacks r=, s= or i=");
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return bad("the server's SCRAM nonce does not extend ours");
        }
        let Some(iterations) = NonZeroU32::new(iterations).filter(|i| i.get() <= MAX_ITERATIONS)
        else {
            return bad(format!(
                "the server asks for {iterations} SCRAM iterations (at most {MAX_ITERATIONS})"
            ));
        };
        let mech = self.mech;
        let mut salted = vec![0u8; mech.digest().output_len()];
        pbkdf2::derive(
            mech.pbkdf2(),
            iterations,
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = sign(mech, &salted, b"Client Key");
        let stored_key = digest::digest(mech.digest(), &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare);
        let client_signature = sign(mech, stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = sign(mech, &salted, b"Server Key");
        self.server_signature = sign(mech, &server_key, auth_message.as_bytes());
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server's final message (`v=` its signature, or `e=` its refusal).
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::Refused(format!(
                "the server refused the SCRAM proof: {e}"
            )));
        }
        match text.strip_prefix("v=").map(|v| B64.decode(v)) {
            Some(Ok(v)) if v == self.server_signature => Ok(()),
            Some(_) => {
                bad("the server's SCRAM signature does not match: it does not hold this user's key")
            }
            None => bad("the server's final SCRAM message has no v="),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_sha256_example() {
        // RFC 7677 section 3: user "user", password "pencil".
        let mut c = Client::with_nonce(Scram::Sha256, "user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.answer(server_first, "pencil").unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(
            c.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_ok()
        );
        assert!(
            c.verify(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .unwrap_err()
                .text()
                .contains("does not match")
        );
        assert!(matches!(
            c.verify(b"e=invalid-proof"),
            Err(ScramError::Refused(m)) if m.contains("invalid-proof")
        ));
    }

    #[test]
    fn bad_server_messages_are_refused() {
        let mut c = Client::with_nonce(Scram::Sha512, "a=b,c", "abc");
        assert_eq!(c.first(), b"n,,n=a=3Db=2Cc,r=abc");
        for (msg, says) in [
            (&b"r=xyz1,s=AAAA,i=4096"[..], "does not extend"),
            (b"r=abc,s=AAAA,i=4096", "does not extend"),
            (b"r=abcd,s=AAAA,i=999999999", "iterations"),
            (b"r=abcd,s=AAAA,i=0", "iterations"),
            (b"r=abcd,i=4096", "lacks"),
            (b"e=unknown-user", "unknown-user"),
            (b"\xff\xfe", "UTF-8"),
        ] {
            let e = c.answer(msg, "PLANTED-pw").unwrap_err();
            let e = e.text();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("PLANTED"));
        }
    }
}
