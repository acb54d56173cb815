//! LOGIN7 (MS-TDS 2.2.6.4): the fixed header of offsets and lengths, the UCS-2
//! strings they point at, the obfuscated password and the FeatureExt block that
//! carries a FEDAUTH access token.

use std::io;

use super::packet::invalid;

/// FeatureExt ids (MS-TDS 2.2.6.4, FeatureId).
pub mod feature {
    pub const FEDAUTH: u8 = 0x02;
    pub const TERMINATOR: u8 = 0xFF;
}

/// FEDAUTH `bFedAuthLibrary` values.
pub mod fedauth_library {
    /// The client already holds an access token (managed identity, az cli):
    /// the only workflow whose token travels in LOGIN7 itself.
    pub const SECURITY_TOKEN: u8 = 0x01;
    /// ADAL/MSAL workflows, where the server answers FEDAUTHINFO first.
    pub const ADAL: u8 = 0x02;
}

/// OptionFlags3 bit: the `ibExtension` field points at FeatureExt.
const F_EXTENSION: u8 = 0x10;

#[derive(Debug, Clone, Default)]
pub struct Login7 {
    /// As sent (little-endian on the wire), e.g. 0x74000004 for TDS 7.4.
    pub tds_version: u32,
    pub packet_size: u32,
    pub option_flags2: u8,
    pub host_name: String,
    pub user_name: String,
    pub password: String,
    pub app_name: String,
    pub server_name: String,
    pub library: String,
    pub language: String,
    pub database: String,
    /// Integrated security (SSPI/Kerberos) was requested.
    pub integrated: bool,
    pub features: Vec<(u8, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedAuth {
    pub library: u8,
    /// The client echoes FEDAUTHREQUIRED from the server's PRELOGIN.
    pub echo: bool,
    /// The access token, for the security-token library.
    pub token: Option<String>,
}

impl Login7 {
    pub fn parse(p: &[u8]) -> io::Result<Login7> {
        if p.len() < 94 {
            // 94 bytes is the TDS 7.2+ fixed part; 7.0/7.1 headers (86) are not used
            // by any client we drive, and a short LOGIN7 is a client bug worth seeing.
            return Err(invalid(format!("LOGIN7 of {} bytes is too short", p.len())));
        }
        let u16_at = |i: usize| u16::from_le_bytes([p[i], p[i + 1]]) as usize;
        let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        let string = |field: usize| -> io::Result<String> {
            let (off, chars) = (u16_at(field), u16_at(field + 2));
            let bytes = p
                .get(off..off + chars * 2)
                .ok_or_else(|| invalid(format!("LOGIN7 field at {field} out of bounds")))?;
            Ok(ucs2_to_string(bytes))
        };
        let option_flags2 = p[25];
        let option_flags3 = p[27];
        let pw_off = u16_at(44);
        let pw_len = u16_at(46) * 2;
        let password = p
            .get(pw_off..pw_off + pw_len)
            .map(deobfuscate)
            .ok_or_else(|| invalid("LOGIN7 password out of bounds".into()))?;
        let mut login = Login7 {
            tds_version: u32_at(4),
            packet_size: u32_at(8),
            option_flags2,
            host_name: string(36)?,
            user_name: string(40)?,
            password,
            app_name: string(48)?,
            server_name: string(52)?,
            library: string(60)?,
            language: string(64)?,
            database: string(68)?,
            integrated: option_flags2 & 0x80 != 0,
            features: Vec::new(),
        };
        if option_flags3 & F_EXTENSION != 0 {
            // ibExtension points at a DWORD holding the offset of FeatureExt.
            let ptr = u16_at(56);
            let at = p
                .get(ptr..ptr + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| invalid("LOGIN7 extension pointer out of bounds".into()))?;
            login.features = parse_features(p.get(at..).unwrap_or_default())?;
        }
        Ok(login)
    }

    pub fn feature(&self, id: u8) -> Option<&[u8]> {
        self.features
            .iter()
            .find(|(f, _)| *f == id)
            .map(|(_, d)| d.as_slice())
    }

    pub fn fedauth(&self) -> Option<FedAuth> {
        let data = self.feature(feature::FEDAUTH)?;
        let options = *data.first()?;
        let library = options >> 1;
        let token = (library == fedauth_library::SECURITY_TOKEN)
            .then(|| {
                let len = data.get(1..5)?;
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                data.get(5..5 + len).map(ucs2_to_string)
            })
            .flatten();
        Some(FedAuth {
            library,
            echo: options & 1 != 0,
            token,
        })
    }
}

fn parse_features(mut p: &[u8]) -> io::Result<Vec<(u8, Vec<u8>)>> {
    let mut features = Vec::new();
    loop {
        match p.first() {
            None | Some(&feature::TERMINATOR) => return Ok(features),
            Some(&id) => {
                let len = p
                    .get(1..5)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .ok_or_else(|| invalid("FeatureExt truncated".into()))?;
                let data = p
                    .get(5..5 + len)
                    .ok_or_else(|| invalid(format!("FeatureExt {id:#04x} out of bounds")))?;
                features.push((id, data.to_vec()));
                p = &p[5 + len..];
            }
        }
    }
}

/// Undoes the LOGIN7 password obfuscation: clients swap each byte's nibbles and
/// then XOR 0xA5, so the server XORs first and swaps back.
pub fn deobfuscate(bytes: &[u8]) -> String {
    let plain: Vec<u8> = bytes
        .iter()
        .map(|b| {
            let x = b ^ 0xA5;
            x.rotate_left(4)
        })
        .collect();
    ucs2_to_string(&plain)
}

/// A minimal LOGIN7 for SQL authentication (TDS 7.4, no FeatureExt), as a
/// client would send it; for raw-byte tests that do not need a driver.
pub fn encode_sql_login(user: &str, password: &str, database: &str) -> Vec<u8> {
    const FIXED: usize = 94;
    let fields: [Vec<u8>; 9] = [
        string_to_ucs2("rawclient"), // host
        string_to_ucs2(user),
        obfuscate(password),
        string_to_ucs2("routeproof-raw"), // app
        string_to_ucs2("127.0.0.1"),      // server
        Vec::new(),                       // extension
        string_to_ucs2("routeproof"),     // client interface
        Vec::new(),                       // language
        string_to_ucs2(database),
    ];
    let mut fixed = Vec::with_capacity(FIXED);
    let total = FIXED + fields.iter().map(Vec::len).sum::<usize>();
    fixed.extend_from_slice(&(total as u32).to_le_bytes());
    fixed.extend_from_slice(&0x7400_0004u32.to_le_bytes());
    fixed.extend_from_slice(&4096u32.to_le_bytes());
    fixed.extend_from_slice(&[0; 12]); // client version, PID, connection id
    fixed.extend_from_slice(&[0xE0, 0x03, 0, 0]); // option flags, type flags
    fixed.extend_from_slice(&[0; 8]); // time zone, LCID
    let mut data = Vec::new();
    for field in &fields {
        let off = (FIXED + data.len()) as u16;
        // Lengths count UCS-2 characters, except cbExtension (bytes; 0 here).
        let len = (field.len() / 2) as u16;
        fixed.extend_from_slice(&off.to_le_bytes());
        fixed.extend_from_slice(&len.to_le_bytes());
        data.extend_from_slice(field);
    }
    fixed.extend_from_slice(&[0; 6]); // client id
    let end = (FIXED + data.len()) as u16;
    for _ in 0..3 {
        // SSPI, attach-db file, change password: empty
        fixed.extend_from_slice(&end.to_le_bytes());
        fixed.extend_from_slice(&0u16.to_le_bytes());
    }
    fixed.extend_from_slice(&0u32.to_le_bytes()); // cbSSPILong
    debug_assert_eq!(fixed.len(), FIXED);
    fixed.extend_from_slice(&data);
    fixed
}

/// The client side of [`deobfuscate`], for tests that build a LOGIN7 themselves.
pub fn obfuscate(password: &str) -> Vec<u8> {
    string_to_ucs2(password)
        .iter()
        .map(|b| b.rotate_left(4) ^ 0xA5)
        .collect()
}

pub fn ucs2_to_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

pub fn string_to_ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// TDS 7.2 changed several token layouts (8-byte DONE row counts, 4-byte UserType,
/// 4-byte line numbers); TDS 8 clients report 0x08000000 and use the 7.4 layouts.
pub fn is_tds72_plus(version: u32) -> bool {
    version >= 0x7209_0002 || version >> 24 == 0x08
}

/// The TDS version LOGINACK reports: the client's own when it is one SQL Server
/// knows, else 7.4. Clients map this value to a feature level and reject unknown
/// ones (tedious: "Server responded with unknown TDS version").
pub fn loginack_version(client: u32) -> u32 {
    match client {
        0x0700_0000 | 0x0701_0000 | 0x7100_0001 | 0x7209_0002 | 0x730A_0003 | 0x730B_0003
        | 0x7400_0004 => client,
        _ => 0x7400_0004,
    }
}
