//! Settings vocabulary shared by every tier: the one yes/no parser for app-setting
//! values and the one W3C `traceparent` parser. This module imports nothing from the
//! crate, so any module (config, platform, handler, telemetry) may use it.

use std::fmt;

/// Lookup of one setting by name (the process environment, or a test's table).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A yes/no value: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, case-insensitive,
/// surrounding blanks ignored. Anything else (including empty) is `None`.
pub fn parse_yes_no(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The yes/no setting `key`: unset or empty is `Ok(None)` (the caller's default
/// decides), a value that is neither yes nor no is an error naming the setting.
pub fn yes_no(key: &str, env: Lookup<'_>) -> Result<Option<bool>, String> {
    match env(key) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => parse_yes_no(&v).map(Some).ok_or_else(|| {
            format!(
                "{key}=`{}` is not true or false (1/0, yes/no, on/off)",
                v.trim().chars().take(64).collect::<String>()
            )
        }),
    }
}

/// `yes_no` with a default for unset, empty and unreadable values; an unreadable value
/// is reported through `warn` once (callers log it) and then treated as unset.
pub fn yes_no_or(key: &str, default: bool, env: Lookup<'_>, warn: &dyn Fn(&str)) -> bool {
    match yes_no(key, env) {
        Ok(v) => v.unwrap_or(default),
        Err(e) => {
            warn(&e);
            default
        }
    }
}

/// A W3C Trace Context `traceparent` header: `version-traceid-parentid-flags`
/// (<https://www.w3.org/TR/trace-context/#traceparent-header>).
///
/// Rules: every field is hex (upper case is accepted and normalised to lower case);
/// version `ff` is invalid; version `00` has exactly four fields, later versions may
/// append more (ignored); the trace id is 32 digits and the parent id 16, neither all
/// zeros; the flags are 2 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub version: u8,
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    pub fn parse(s: &str) -> Option<TraceParent> {
        let s = s.trim();
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() < 4 {
            return None;
        }
        let version = hex_byte(parts[0])?;
        if version == 0xff || (version == 0 && parts.len() != 4) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        hex_into(parts[1], &mut trace_id)?;
        hex_into(parts[2], &mut parent_id)?;
        let flags = hex_byte(parts[3])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent (span) id as 16 lower-case hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }

    /// Whether the caller sampled this trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// The header form, lower case, four fields: parsing it again gives the same value.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}-{}-{}-{:02x}",
            self.version,
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_byte(s: &str) -> Option<u8> {
    let mut b = [0u8; 1];
    hex_into(s, &mut b)?;
    Some(b[0])
}

/// Exactly `2 * out.len()` hex digits into `out`.
fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return None;
    }
    for (i, pair) in s.chunks(2).enumerate() {
        let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
        out[i] = d(pair[0])? << 4 | d(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_and_no() {
        for v in ["1", "TRUE", " yes ", "On"] {
            assert_eq!(parse_yes_no(v), Some(true), "{v}");
        }
        for v in ["0", "false", "NO", "off"] {
            assert_eq!(parse_yes_no(v), Some(false), "{v}");
        }
        for v in ["", "maybe", "2", "tru"] {
            assert_eq!(parse_yes_no(v), None, "{v}");
        }
        assert_eq!(yes_no("X", &|_| None), Ok(None));
        assert_eq!(yes_no("X", &|_| Some("  ".into())), Ok(None));
        assert_eq!(yes_no("X", &|_| Some("off".into())), Ok(Some(false)));
        let e = yes_no("X", &|_| Some("maybe".into())).unwrap_err();
        assert!(e.contains("X=`maybe`"), "{e}");
        let warned = std::cell::Cell::new(false);
        assert!(yes_no_or("X", true, &|_| Some("maybe".into()), &|_| {
            warned.set(true)
        }));
        assert!(warned.get());
    }

    #[test]
    fn traceparent_rules() {
        let good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let tp = TraceParent::parse(good).unwrap();
        assert_eq!(tp.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(tp.parent_id_hex(), "b7ad6b7169203331");
        assert!(tp.sampled());
        assert_eq!(tp.to_string(), good);
        assert_eq!(
            TraceParent::parse(&good.to_ascii_uppercase()).unwrap(),
            tp,
            "upper case is normalised"
        );
        // A later version may carry more fields.
        assert!(TraceParent::parse(&format!("01{}-more", &good[2..])).is_some());
        for bad in [
            "",
            "garbage",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}
