//! SMB 445 (the Azure Files content share): on a connected TCP stream, one SMB2 NEGOTIATE
//! and its response, credential-free. Hand-written: the request is 4 + 64 + 36 + 10 +
//! contexts bytes, per Microsoft's [MS-SMB2] sections 2.1 (direct TCP transport: a zero
//! byte and a 24-bit length), 2.2.1 (the 64-byte header, `\xfeSMB`), 2.2.3 (NEGOTIATE
//! request, dialects 2.0.2 to 3.1.1, with the PREAUTH_INTEGRITY and ENCRYPTION contexts
//! 3.1.1 requires) and 2.2.4 (NEGOTIATE response). A full client crate (`smb2`: 82
//! packages) would add a session we never set up.
//!
//! | kind | class | hint (decisive content) |
//! |---|---|---|
//! | (connect refused) | `smb.refused` | nothing listens on 445 at that address: the private endpoint for `file` and zone `privatelink.file.core.windows.net`; an NSG outbound rule allowing 445 |
//! | (connect / answer timeout) | `smb.timeout` | 445 is dropped on the way: an NSG or Azure Firewall rule, a route to an appliance; the content share over the VNet needs `vnetContentShareEnabled` (`WEBSITE_CONTENTOVERVNET=1`) and both 443 and 445 |
//! | `not_smb` | `smb.not_smb` | something answered on 445 but not SMB2: a wrong DNS answer or an appliance |
//! | `smb1_only` | `smb.not_smb` | an SMB1-only server (Azure Files never is) |
//! | `negotiate_rejected` | `smb.negotiate_rejected` | an SMB server refused every offered dialect (status in the evidence) |
//! | `closed` | `smb.closed` | the server closed without answering (Azure Files does so for SMB1 and unsupported dialects) |

use std::net::SocketAddr;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What the server's NEGOTIATE response said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Negotiated {
    /// e.g. `3.1.1`.
    pub dialect: String,
    pub dialect_code: u16,
    pub signing_enabled: bool,
    pub signing_required: bool,
    pub server_guid: String,
    pub capabilities: u32,
    /// Capability names (`dfs`, `leasing`, `large_mtu`, `multi_channel`, `persistent_handles`,
    /// `directory_leasing`, `encryption`).
    pub capability_names: Vec<&'static str>,
    pub max_read_size: u32,
    /// 3.1.1: the cipher the server chose (`AES-128-GCM`, …), when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<&'static str>,
}

/// Why the exchange did not prove an SMB2 server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmbError {
    #[error("connection refused on {addr}")]
    Refused { addr: String },
    #[error("no answer within the deadline (phase: {phase})")]
    Timeout { phase: &'static str },
    #[error("not an SMB2 server: the answer starts with {first_bytes}")]
    NotSmb { first_bytes: String },
    #[error("an SMB1-only server (no SMB2 dialect)")]
    Smb1Only,
    #[error("the server refused the NEGOTIATE: status 0x{status:08x}")]
    NegotiateRejected { status: u32 },
    #[error("the server closed the connection without answering")]
    Closed,
    #[error("i/o error: {message}")]
    Io { message: String },
}

impl SmbError {
    pub fn class(&self) -> &'static str {
        match self {
            SmbError::Refused { .. } => "smb.refused",
            SmbError::Timeout { .. } => "smb.timeout",
            SmbError::NotSmb { .. } | SmbError::Smb1Only => "smb.not_smb",
            SmbError::NegotiateRejected { .. } => "smb.negotiate_rejected",
            SmbError::Closed => "smb.closed",
            SmbError::Io { .. } => "smb.io",
        }
    }

    pub fn hint(&self) -> String {
        match self {
            SmbError::Refused { addr } => format!(
                "Nothing accepted TCP 445 at {addr}: the storage account needs a private endpoint for `file` (zone privatelink.file.core.windows.net linked to the VNet), and an NSG outbound rule must allow 445 from the integration subnet."
            ),
            SmbError::Timeout { .. } => "TCP 445 is dropped on the way (no refusal, no answer): an NSG or Azure Firewall rule, or a route to an appliance that drops it. The content share over the VNet needs vnetContentShareEnabled (WEBSITE_CONTENTOVERVNET=1) and both 443 and 445 open to the storage account's private endpoint.".into(),
            SmbError::NotSmb { .. } | SmbError::Smb1Only => "Something answered on 445 but it is not an SMB2/3 server like Azure Files: check the DNS answer for the file endpoint (privatelink.file.core.windows.net) and any appliance on the route.".into(),
            SmbError::NegotiateRejected { .. } => "An SMB server answered but accepted none of the dialects 2.0.2-3.1.1: Azure Files needs SMB 3.x for access from outside its region (and with secure transfer required).".into(),
            SmbError::Closed => "The server on 445 closed the connection without answering the NEGOTIATE: an appliance that resets SMB, or a server that refuses these dialects.".into(),
            SmbError::Io { .. } => "The connection on 445 failed mid-exchange.".into(),
        }
    }
}

const DIALECTS: [u16; 5] = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311];
const MAX_RESPONSE: usize = 64 * 1024;

fn dialect_name(d: u16) -> String {
    match d {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        0x02ff => "2.???".into(),
        other => format!("0x{other:04x}"),
    }
}

/// The NEGOTIATE request, with its direct-TCP length prefix.
pub fn negotiate_request(client_guid: [u8; 16], salt: [u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(256);
    // SMB2 header (64 bytes), [MS-SMB2] 2.2.1.2.
    m.extend_from_slice(b"\xfeSMB");
    m.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    m.extend_from_slice(&0u16.to_le_bytes()); // CreditCharge
    m.extend_from_slice(&0u32.to_le_bytes()); // Status
    m.extend_from_slice(&0u16.to_le_bytes()); // Command: NEGOTIATE
    m.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    m.extend_from_slice(&0u32.to_le_bytes()); // Flags
    m.extend_from_slice(&0u32.to_le_bytes()); // NextCommand
    m.extend_from_slice(&0u64.to_le_bytes()); // MessageId
    m.extend_from_slice(&0u32.to_le_bytes()); // Reserved (ProcessId)
    m.extend_from_slice(&0u32.to_le_bytes()); // TreeId
    m.extend_from_slice(&0u64.to_le_bytes()); // SessionId
    m.extend_from_slice(&[0u8; 16]); // Signature
    // NEGOTIATE request, [MS-SMB2] 2.2.3.
    m.extend_from_slice(&36u16.to_le_bytes()); // StructureSize
    m.extend_from_slice(&(DIALECTS.len() as u16).to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: signing enabled
    m.extend_from_slice(&0u16.to_le_bytes()); // Reserved
    m.extend_from_slice(&0x7fu32.to_le_bytes()); // Capabilities (all but notifications)
    m.extend_from_slice(&client_guid);
    let ctx_offset_at = m.len();
    m.extend_from_slice(&0u32.to_le_bytes()); // NegotiateContextOffset (patched)
    m.extend_from_slice(&2u16.to_le_bytes()); // NegotiateContextCount
    m.extend_from_slice(&0u16.to_le_bytes()); // Reserved2
    for d in DIALECTS {
        m.extend_from_slice(&d.to_le_bytes());
    }
    while m.len() % 8 != 0 {
        m.push(0);
    }
    let ctx_offset = m.len() as u32; // from the start of the SMB2 header
    m[ctx_offset_at..ctx_offset_at + 4].copy_from_slice(&ctx_offset.to_le_bytes());
    // PREAUTH_INTEGRITY_CAPABILITIES: SHA-512 with a 32-byte salt (2.2.3.1.1).
    let mut pre = Vec::new();
    pre.extend_from_slice(&1u16.to_le_bytes()); // HashAlgorithmCount
    pre.extend_from_slice(&32u16.to_le_bytes()); // SaltLength
    pre.extend_from_slice(&1u16.to_le_bytes()); // SHA-512
    pre.extend_from_slice(&salt);
    push_context(&mut m, 1, &pre);
    while m.len() % 8 != 0 {
        m.push(0);
    }
    // ENCRYPTION_CAPABILITIES: AES-128-GCM, AES-128-CCM, AES-256-GCM, AES-256-CCM (2.2.3.1.2).
    let mut enc = Vec::new();
    enc.extend_from_slice(&4u16.to_le_bytes());
    for c in [2u16, 1, 4, 3] {
        enc.extend_from_slice(&c.to_le_bytes());
    }
    push_context(&mut m, 2, &enc);
    let mut out = Vec::with_capacity(m.len() + 4);
    out.push(0);
    out.extend_from_slice(&(m.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&m);
    out
}

fn push_context(m: &mut Vec<u8>, kind: u16, data: &[u8]) {
    m.extend_from_slice(&kind.to_le_bytes());
    m.extend_from_slice(&(data.len() as u16).to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(data);
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses a NEGOTIATE response message (the SMB2 header onwards, no length prefix).
pub fn parse_response(msg: &[u8]) -> Result<Negotiated, SmbError> {
    let not_smb = || SmbError::NotSmb {
        first_bytes: hex(&msg[..msg.len().min(8)]),
    };
    if msg.starts_with(b"\xffSMB") {
        return Err(SmbError::Smb1Only);
    }
    if !msg.starts_with(b"\xfeSMB") || u16le(msg, 4) != Some(64) {
        return Err(not_smb());
    }
    let status = u32le(msg, 8).ok_or_else(not_smb)?;
    if u16le(msg, 12) != Some(0) {
        return Err(not_smb());
    }
    if status != 0 {
        return Err(SmbError::NegotiateRejected { status });
    }
    let r = &msg[64..];
    if u16le(r, 0) != Some(65) {
        return Err(not_smb());
    }
    let security = u16le(r, 2).ok_or_else(not_smb)?;
    let dialect = u16le(r, 4).ok_or_else(not_smb)?;
    let ctx_count = u16le(r, 6).ok_or_else(not_smb)?;
    let guid = r.get(8..24).ok_or_else(not_smb)?;
    let caps = u32le(r, 24).ok_or_else(not_smb)?;
    let max_read = u32le(r, 32).ok_or_else(not_smb)?;
    let ctx_offset = u32le(r, 60).ok_or_else(not_smb)? as usize;
    let names = [
        (0x01, "dfs"),
        (0x02, "leasing"),
        (0x04, "large_mtu"),
        (0x08, "multi_channel"),
        (0x10, "persistent_handles"),
        (0x20, "directory_leasing"),
        (0x40, "encryption"),
    ];
    let mut cipher = None;
    if dialect == 0x0311 && ctx_count > 0 {
        let mut at = ctx_offset;
        for _ in 0..ctx_count.min(16) {
            let (Some(kind), Some(len)) = (u16le(msg, at), u16le(msg, at + 2)) else {
                break;
            };
            let data = at + 8;
            if kind == 2 && u16le(msg, data) == Some(1) {
                cipher = match u16le(msg, data + 2) {
                    Some(1) => Some("AES-128-CCM"),
                    Some(2) => Some("AES-128-GCM"),
                    Some(3) => Some("AES-256-CCM"),
                    Some(4) => Some("AES-256-GCM"),
                    _ => None,
                };
            }
            at = (data + len as usize).div_ceil(8) * 8;
        }
    }
    Ok(Negotiated {
        dialect: dialect_name(dialect),
        dialect_code: dialect,
        signing_enabled: security & 1 != 0,
        signing_required: security & 2 != 0,
        server_guid: hex(guid),
        capabilities: caps,
        capability_names: names
            .iter()
            .filter(|(bit, _)| caps & bit != 0)
            .map(|(_, n)| *n)
            .collect(),
        max_read_size: max_read,
        cipher,
    })
}

/// NEGOTIATE over `stream`, bounded by `deadline`.
pub async fn negotiate<S>(mut stream: S, deadline: Instant) -> Result<Negotiated, SmbError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut seed = [0u8; 48];
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| SmbError::Io {
        message: "no randomness".into(),
    })?;
    let guid: [u8; 16] = seed[..16].try_into().expect("16 bytes");
    let salt: [u8; 32] = seed[16..].try_into().expect("32 bytes");
    let req = negotiate_request(guid, salt);
    let io = |e: std::io::Error| SmbError::Io {
        message: e.to_string(),
    };
    let timeout = |phase| move |_| SmbError::Timeout { phase };
    tokio::time::timeout_at(deadline, stream.write_all(&req))
        .await
        .map_err(timeout("send"))?
        .map_err(io)?;
    let mut head = [0u8; 4];
    let n = tokio::time::timeout_at(deadline, read_some(&mut stream, &mut head))
        .await
        .map_err(timeout("answer"))?
        .map_err(io)?;
    if n == 0 {
        return Err(SmbError::Closed);
    }
    if n < 4 || head[0] != 0 {
        return Err(SmbError::NotSmb {
            first_bytes: hex(&head[..n]),
        });
    }
    let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
    if !(64..=MAX_RESPONSE).contains(&len) {
        return Err(SmbError::NotSmb {
            first_bytes: hex(&head),
        });
    }
    let mut msg = vec![0u8; len];
    tokio::time::timeout_at(deadline, stream.read_exact(&mut msg))
        .await
        .map_err(timeout("answer"))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => SmbError::NotSmb {
                first_bytes: hex(&head),
            },
            _ => io(e),
        })?;
    parse_response(&msg)
}

/// Reads until `buf` is full or the peer closes; returns the bytes read.
async fn read_some<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if n == 0 && e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(0),
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// TCP connect to `addr` and NEGOTIATE, for callers without a proven stream (the CLI, tests).
pub async fn probe(addr: SocketAddr, deadline: Instant) -> Result<Negotiated, SmbError> {
    let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| SmbError::Timeout { phase: "connect" })?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => SmbError::Refused {
                addr: addr.to_string(),
            },
            _ => SmbError::Io {
                message: e.to_string(),
            },
        })?;
    negotiate(stream, deadline).await
}

/// The SMB layer's input (the one layer shape): NEGOTIATE over the TCP layer's stream.
pub struct SmbStep<'a> {
    pub ctx: &'a crate::diagnose::Context,
}

/// The report class of an SMB outcome.
pub fn failure_class(e: &SmbError) -> crate::report::FailureClass {
    use crate::report::FailureClass as C;
    match e {
        SmbError::Refused { .. } => C::SmbRefused,
        SmbError::Timeout { .. } => C::SmbTimeout,
        SmbError::NotSmb { .. } | SmbError::Smb1Only => C::SmbNotSmb,
        SmbError::NegotiateRejected { .. } => C::SmbNegotiateRejected,
        SmbError::Closed => C::SmbClosed,
        SmbError::Io { .. } => C::SmbError,
    }
}

pub async fn run(
    stream: TcpStream,
    step: SmbStep<'_>,
    budget: &crate::budget::Budget,
) -> super::step::Step<()> {
    use crate::report::{Evidence, Layer, LayerResult, SmbEvidence, ms};
    let start = Instant::now();
    let outcome = negotiate(stream, budget.deadline()).await;
    let (error, smb) = match outcome {
        Ok(n) => (None, serde_json::to_value(&n).unwrap_or_default()),
        Err(e) => {
            let mut f = crate::diagnose::failure(
                Some(Layer::Smb),
                failure_class(&e),
                e.to_string(),
                step.ctx,
            );
            f.hint = e.hint();
            (Some(f), serde_json::to_value(&e).unwrap_or_default())
        }
    };
    super::step::Step::last(LayerResult {
        layer: Layer::Smb,
        ok: error.is_none(),
        start_ms: 0.0,
        duration_ms: ms(start.elapsed()),
        error,
        evidence: Evidence::Smb(SmbEvidence { smb }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_shape() {
        let r = negotiate_request([7; 16], [9; 32]);
        assert_eq!(r[0], 0);
        let len = u32::from_be_bytes([0, r[1], r[2], r[3]]) as usize;
        assert_eq!(len, r.len() - 4);
        assert_eq!(&r[4..8], b"\xfeSMB");
        assert_eq!(u16le(&r[4..], 64), Some(36));
        assert_eq!(u16le(&r[4..], 66), Some(5));
    }

    #[test]
    fn parses_a_response_and_refuses_garbage() {
        let mut m = vec![0u8; 64 + 64];
        m[..4].copy_from_slice(b"\xfeSMB");
        m[4] = 64;
        let r = 64;
        m[r] = 65;
        m[r + 2] = 1; // signing enabled
        m[r + 4..r + 6].copy_from_slice(&0x0302u16.to_le_bytes());
        m[r + 8..r + 24].copy_from_slice(&[0xab; 16]);
        m[r + 24..r + 28].copy_from_slice(&0x4fu32.to_le_bytes());
        let n = parse_response(&m).unwrap();
        assert_eq!(n.dialect, "3.0.2");
        assert!(n.signing_enabled && !n.signing_required);
        assert!(n.capability_names.contains(&"encryption"));
        assert_eq!(n.server_guid, "ab".repeat(16));
        assert_eq!(
            parse_response(b"HTTP/1.1 400 Bad Request\r\n"),
            Err(SmbError::NotSmb {
                first_bytes: hex(b"HTTP/1.1")
            })
        );
        assert_eq!(parse_response(b"\xffSMBr"), Err(SmbError::Smb1Only));
        m[8..12].copy_from_slice(&0xC000_00BBu32.to_le_bytes());
        assert_eq!(
            parse_response(&m),
            Err(SmbError::NegotiateRejected {
                status: 0xC000_00BB
            })
        );
        assert_eq!(
            parse_response(&m[..70]).unwrap_err().class(),
            "smb.negotiate_rejected"
        );
    }
}
