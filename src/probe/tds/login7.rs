//! The two requests the probe sends after PRELOGIN and TLS: LOGIN7 (MS-TDS 2.2.6.4),
//! with SQL authentication or a FEDAUTH security token, and a SQL batch with its
//! ALL_HEADERS (MS-TDS 2.2.6.7, 2.2.5.3). The server side that reads them is
//! tests/support/tds/login.rs and batch.rs.
//!
//! The encoded LOGIN7 holds the obfuscated password or the token: the caller zeroes
//! the buffer once it is written, and nothing here formats it.

/// TDS 7.4, little-endian on the wire (SQL Server 2012 and later, Azure SQL).
pub const TDS_74: u32 = 0x7400_0004;
/// The packet size LOGIN7 asks for; the server's ENVCHANGE says what it agreed.
pub const PACKET_SIZE: u32 = 4096;

/// The fixed part of LOGIN7 from TDS 7.2 on: lengths, flags, then the offset table.
const FIXED: usize = 94;
/// OptionFlags1: fUseDB (warn on database change) and fDatabase (the initial
/// database must exist, else the login fails).
const FLAGS1: u8 = 0x20 | 0x40;
/// OptionFlags2: fLanguage (the initial language must exist) and fODBC.
const FLAGS2: u8 = 0x01 | 0x02;
/// OptionFlags3: fUnknownCollationHandling, plus fExtension when FeatureExt follows.
const FLAGS3: u8 = 0x08;
const F_EXTENSION: u8 = 0x10;
/// FeatureExt: FEDAUTH, and the block's terminator.
const FEATURE_FEDAUTH: u8 = 0x02;
const FEATURE_END: u8 = 0xFF;
/// FEDAUTH bFedAuthLibrary: the client already holds the token (managed identity).
const LIBRARY_SECURITY_TOKEN: u8 = 0x01;

/// A FEDAUTH security-token login.
pub struct FedAuth<'a> {
    /// The access token, sent UTF-16LE.
    pub token: &'a str,
    /// fFedAuthEcho: the server's PRELOGIN said FEDAUTHREQUIRED=1.
    pub echo: bool,
}

/// What LOGIN7 carries. Empty strings are sent as empty fields.
pub struct Login7<'a> {
    /// The client machine's name (the workstation id in `sys.dm_exec_sessions`).
    pub host_name: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    pub app_name: &'a str,
    /// The name the client connected to; Azure SQL's gateway routes on it.
    pub server_name: &'a str,
    pub library: &'a str,
    pub database: &'a str,
    pub fedauth: Option<FedAuth<'a>>,
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// MS-TDS 2.2.6.4: each byte of the UTF-16LE password has its nibbles swapped, then
/// is XORed with 0xA5.
pub fn obfuscate(password: &str) -> Vec<u8> {
    utf16(password)
        .into_iter()
        .map(|b| b.rotate_left(4) ^ 0xA5)
        .collect()
}

fn fedauth_feature(f: &FedAuth<'_>) -> Vec<u8> {
    let token = utf16(f.token);
    let mut data = Vec::with_capacity(token.len() + 5);
    data.push((LIBRARY_SECURITY_TOKEN << 1) | u8::from(f.echo));
    data.extend_from_slice(&(token.len() as u32).to_le_bytes());
    data.extend_from_slice(&token);
    let mut out = Vec::with_capacity(data.len() + 6);
    out.push(FEATURE_FEDAUTH);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out.push(FEATURE_END);
    out
}

/// The LOGIN7 payload. Strings longer than a field can say (65,535 characters) are an
/// error; no real name or token is.
pub fn encode(l: &Login7<'_>) -> Result<Vec<u8>, String> {
    let feature = l.fedauth.as_ref().map(fedauth_feature);
    // The nine offset/length fields in their order; the extension field holds a
    // DWORD: the offset of FeatureExt, which goes after all the strings.
    let fields: [(Vec<u8>, bool); 9] = [
        (utf16(l.host_name), true),
        (utf16(l.user), true),
        (obfuscate(l.password), true),
        (utf16(l.app_name), true),
        (utf16(l.server_name), true),
        (
            if feature.is_some() {
                vec![0; 4]
            } else {
                Vec::new()
            },
            false,
        ),
        (utf16(l.library), true),
        (Vec::new(), true), // language: the server's default
        (utf16(l.database), true),
    ];
    let strings: usize = fields.iter().map(|(f, _)| f.len()).sum();
    let total = FIXED + strings + feature.as_ref().map_or(0, Vec::len);
    if total > u16::MAX as usize {
        // Offsets are u16: a LOGIN7 this big cannot be addressed.
        return Err(format!(
            "the LOGIN7 would be {total} bytes, more than TDS can address"
        ));
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&TDS_74.to_le_bytes());
    out.extend_from_slice(&PACKET_SIZE.to_le_bytes());
    out.extend_from_slice(&0x0100_0000u32.to_le_bytes()); // ClientProgVer
    out.extend_from_slice(&std::process::id().to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // ConnectionID
    let flags3 = FLAGS3 | if feature.is_some() { F_EXTENSION } else { 0 };
    out.extend_from_slice(&[FLAGS1, FLAGS2, 0, flags3]);
    out.extend_from_slice(&0i32.to_le_bytes()); // ClientTimeZone
    out.extend_from_slice(&0x0409u32.to_le_bytes()); // ClientLCID: en-US
    let mut data: Vec<u8> = Vec::with_capacity(strings);
    let feature_at = (FIXED + strings) as u32;
    for (i, (field, chars)) in fields.iter().enumerate() {
        let off = (FIXED + data.len()) as u16;
        let len = if *chars { field.len() / 2 } else { field.len() } as u16;
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        if i == 5 && feature.is_some() {
            data.extend_from_slice(&feature_at.to_le_bytes());
        } else {
            data.extend_from_slice(field);
        }
    }
    out.extend_from_slice(&[0; 6]); // ClientID
    let end = (FIXED + data.len()) as u16;
    for _ in 0..3 {
        // SSPI, attach-database file, change password: empty.
        out.extend_from_slice(&end.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // cbSSPILong
    debug_assert_eq!(out.len(), FIXED);
    out.extend_from_slice(&data);
    if let Some(f) = feature {
        out.extend_from_slice(&f);
    }
    Ok(out)
}

/// A SQL batch: ALL_HEADERS with the transaction descriptor header (no transaction,
/// one outstanding request), then the statement in UTF-16LE.
pub fn sql_batch(sql: &str) -> Vec<u8> {
    let text = utf16(sql);
    let mut out = Vec::with_capacity(22 + text.len());
    out.extend_from_slice(&22u32.to_le_bytes()); // TotalLength
    out.extend_from_slice(&18u32.to_le_bytes()); // HeaderLength
    out.extend_from_slice(&2u16.to_le_bytes()); // HeaderType: transaction descriptor
    out.extend_from_slice(&0u64.to_le_bytes()); // TransactionDescriptor
    out.extend_from_slice(&1u32.to_le_bytes()); // OutstandingRequestCount
    out.extend_from_slice(&text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(p: &[u8], i: usize) -> usize {
        u16::from_le_bytes([p[i], p[i + 1]]) as usize
    }

    fn string_at(p: &[u8], field: usize) -> String {
        let (off, chars) = (u16_at(p, field), u16_at(p, field + 2));
        let units: Vec<u16> = p[off..off + chars * 2]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    }

    fn login<'a>(fedauth: Option<FedAuth<'a>>) -> Login7<'a> {
        Login7 {
            host_name: "worker1",
            user: if fedauth.is_some() { "" } else { "app" },
            password: if fedauth.is_some() { "" } else { "pw" },
            app_name: "routeproof",
            server_name: "db.example",
            library: "routeproof",
            database: "orders",
            fedauth,
        }
    }

    #[test]
    fn password_obfuscation_matches_the_spec_example() {
        // 'a' is 0x61 0x00 in UTF-16LE: nibbles swapped 0x16 0x00, XOR 0xA5 -> 0xB3 0xA5.
        assert_eq!(obfuscate("a"), [0xB3, 0xA5]);
        assert_eq!(obfuscate(""), Vec::<u8>::new());
    }

    #[test]
    fn sql_login_layout() {
        let p = encode(&login(None)).unwrap();
        assert_eq!(
            u32::from_le_bytes(p[0..4].try_into().unwrap()) as usize,
            p.len()
        );
        assert_eq!(
            &p[4..8],
            &[0x04, 0x00, 0x00, 0x74],
            "TDS 7.4, little-endian"
        );
        assert_eq!(p[27] & F_EXTENSION, 0);
        assert_eq!(string_at(&p, 36), "worker1");
        assert_eq!(string_at(&p, 40), "app");
        assert_eq!(string_at(&p, 48), "routeproof");
        assert_eq!(string_at(&p, 52), "db.example");
        assert_eq!(string_at(&p, 68), "orders");
        let (off, len) = (u16_at(&p, 44), u16_at(&p, 46));
        assert_eq!(&p[off..off + len * 2], obfuscate("pw").as_slice());
        assert!(!p.windows(4).any(|w| w == utf16("pw").as_slice()));
    }

    #[test]
    fn fedauth_feature_carries_the_token_utf16() {
        let p = encode(&login(Some(FedAuth {
            token: "tok",
            echo: true,
        })))
        .unwrap();
        assert_ne!(p[27] & F_EXTENSION, 0);
        let ptr = u16_at(&p, 56);
        assert_eq!(u16_at(&p, 58), 4, "cbExtension is the DWORD's size");
        let at = u32::from_le_bytes(p[ptr..ptr + 4].try_into().unwrap()) as usize;
        let f = &p[at..];
        assert_eq!(f[0], FEATURE_FEDAUTH);
        let len = u32::from_le_bytes(f[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, 1 + 4 + 6);
        assert_eq!(f[5], (LIBRARY_SECURITY_TOKEN << 1) | 1, "library and echo");
        assert_eq!(u32::from_le_bytes(f[6..10].try_into().unwrap()), 6);
        assert_eq!(&f[10..16], utf16("tok").as_slice());
        assert_eq!(f[16], FEATURE_END);
        assert_eq!(f.len(), 17);
    }

    #[test]
    fn oversized_login_is_an_error() {
        let big = "x".repeat(40_000);
        let mut l = login(None);
        l.database = &big;
        assert!(encode(&l).is_err());
    }

    #[test]
    fn batch_has_the_transaction_descriptor_header() {
        let b = sql_batch("SELECT 1");
        assert_eq!(
            &b[..22],
            &[
                22, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0
            ]
        );
        assert_eq!(&b[22..], utf16("SELECT 1").as_slice());
    }
}
