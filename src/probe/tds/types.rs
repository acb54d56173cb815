//! Column types in COLMETADATA and their values in ROW / NBCROW (MS-TDS 2.2.5.4,
//! 2.2.5.5): enough to skip every type SQL Server sends by its length rule and to
//! show the first value of the common ones (integers, bits, character strings).
//! A type without a known length rule stops the row walk with a message that names it.

/// A bounded reader over one message: every read checks the length first.
pub struct Cur<'a> {
    b: &'a [u8],
    pub i: usize,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8]) -> Cur<'a> {
        Cur { b, i: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.i.checked_add(n).filter(|e| *e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.i..end];
                self.i = end;
                Ok(s)
            }
            None => Err(format!(
                "the answer is truncated: {n} byte(s) wanted at offset {} of {}",
                self.i,
                self.b.len()
            )),
        }
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A string with a one-byte character count (B_VARCHAR).
    pub fn b_varchar(&mut self) -> Result<String, String> {
        let n = self.u8()? as usize;
        Ok(utf16_lossy(self.take(n * 2)?))
    }

    /// A string with a two-byte character count (US_VARCHAR).
    pub fn us_varchar(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        Ok(utf16_lossy(self.take(n * 2)?))
    }
}

pub fn utf16_lossy(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// How a value's text is decoded for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// Not shown (binary, dates, decimals …): skipped by length.
    No,
    /// VARCHAR / CHAR / TEXT: bytes, shown as UTF-8 (lossy; Latin-1 text is ASCII mostly).
    Narrow,
    /// NVARCHAR / NCHAR / NTEXT: UTF-16LE.
    Wide,
}

/// A column's length rule, from its TYPE_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Fixed-length: INT1/2/4/8, BIT, FLT, MONEY, DATETIME …; `id` decides the display.
    Fixed { id: u8, len: usize },
    /// One length byte before the value (0: NULL): INTN, BITN, GUID, DATEN, TIMEN …
    ByteLen { id: u8 },
    /// Two length bytes (0xFFFF: NULL): the BIG* and N* character and binary types.
    UShortLen { text: Text },
    /// Partially length-prefixed (the `(max)` types, XML, UDT).
    Plp { text: Text },
    /// TEXT / NTEXT / IMAGE: a text pointer, a timestamp, then four length bytes.
    Long { text: Text },
    /// SQL_VARIANT: four length bytes.
    Variant,
}

/// Reads one TYPE_INFO. `Ok(Err(message))`: a type with no known length rule (the
/// walk stops there); `Err`: the bytes are malformed.
pub fn type_info(c: &mut Cur<'_>) -> Result<Result<Ty, String>, String> {
    let id = c.u8()?;
    let fixed = |len| Ok(Ok(Ty::Fixed { id, len }));
    match id {
        0x1F => fixed(0),                      // NULLTYPE
        0x30 | 0x32 => fixed(1),               // INT1, BIT
        0x34 => fixed(2),                      // INT2
        0x38 | 0x3A | 0x3B | 0x7A => fixed(4), // INT4, DATETIM4, FLT4, MONEY4
        0x3C | 0x3D | 0x3E | 0x7F => fixed(8), // MONEY, DATETIME, FLT8, INT8
        // GUID, INTN, BITN, FLTN, MONEYN, DATETIMN, and the legacy BINARY/VARBINARY:
        // a maximum length byte.
        0x24 | 0x26 | 0x68 | 0x6D | 0x6E | 0x6F | 0x2D | 0x25 => {
            c.u8()?;
            Ok(Ok(Ty::ByteLen { id }))
        }
        // DECIMAL, NUMERIC, DECIMALN, NUMERICN: length, precision, scale.
        0x37 | 0x3F | 0x6A | 0x6C => {
            c.take(3)?;
            Ok(Ok(Ty::ByteLen { id }))
        }
        0x28 => Ok(Ok(Ty::ByteLen { id })), // DATEN: no TYPE_INFO beyond the id
        // TIMEN, DATETIME2N, DATETIMEOFFSETN: a scale byte.
        0x29..=0x2B => {
            c.u8()?;
            Ok(Ok(Ty::ByteLen { id }))
        }
        // BIGVARBINARY, BIGBINARY: a two-byte maximum (0xFFFF: `(max)`, PLP).
        0xA5 | 0xAD => ushort(c, Text::No, false),
        // BIGVARCHAR, BIGCHAR, NVARCHAR, NCHAR: maximum and a five-byte collation.
        0xA7 | 0xAF => ushort(c, Text::Narrow, true),
        0xE7 | 0xEF => ushort(c, Text::Wide, true),
        // TEXT, NTEXT (collation follows), IMAGE: a four-byte maximum.
        0x23 | 0x63 | 0x22 => {
            c.u32()?;
            if id != 0x22 {
                c.take(5)?;
            }
            let text = match id {
                0x23 => Text::Narrow,
                0x63 => Text::Wide,
                _ => Text::No,
            };
            Ok(Ok(Ty::Long { text }))
        }
        0x62 => {
            c.u32()?;
            Ok(Ok(Ty::Variant))
        }
        0xF1 => {
            // XML: an optional schema (database, owner, collection names).
            if c.u8()? != 0 {
                c.b_varchar()?;
                c.b_varchar()?;
                c.us_varchar()?;
            }
            Ok(Ok(Ty::Plp { text: Text::Wide }))
        }
        0xF0 => {
            // UDT: maximum, database, schema, type name, assembly-qualified name.
            c.u16()?;
            c.b_varchar()?;
            c.b_varchar()?;
            c.b_varchar()?;
            c.us_varchar()?;
            Ok(Ok(Ty::Plp { text: Text::No }))
        }
        other => Ok(Err(format!(
            "column type {other:#04x} has no length rule the probe knows, so the rows after it were not read"
        ))),
    }
}

fn ushort(c: &mut Cur<'_>, text: Text, collation: bool) -> Result<Result<Ty, String>, String> {
    let max = c.u16()?;
    if collation {
        c.take(5)?;
    }
    Ok(Ok(if max == 0xFFFF {
        Ty::Plp { text }
    } else {
        Ty::UShortLen { text }
    }))
}

/// TEXT, NTEXT and IMAGE columns carry their table's name in COLMETADATA.
pub fn has_table_name(t: &Ty) -> bool {
    matches!(t, Ty::Long { .. })
}

/// The most of a value kept for display; the rest is skipped.
const KEEP: usize = 2048;

/// Reads one value; returns how it shows (`None`: a type the report does not show).
pub fn value(c: &mut Cur<'_>, t: &Ty) -> Result<Option<String>, String> {
    match *t {
        Ty::Fixed { id, len } => {
            let b = c.take(len)?;
            Ok(match id {
                0x1F => Some("NULL".into()),
                _ => int(id, b),
            })
        }
        Ty::ByteLen { id } => {
            let n = c.u8()? as usize;
            let b = c.take(n)?;
            Ok(match (id, n) {
                (_, 0) => Some("NULL".into()),
                (0x26 | 0x68, _) => int(id, b),
                _ => None,
            })
        }
        Ty::UShortLen { text } => {
            let n = c.u16()?;
            if n == 0xFFFF {
                return Ok(Some("NULL".into()));
            }
            Ok(show(text, c.take(n as usize)?))
        }
        Ty::Plp { text } => {
            let total = c.u64()?;
            if total == u64::MAX {
                return Ok(Some("NULL".into()));
            }
            let mut kept = Vec::new();
            loop {
                let n = c.u32()? as usize;
                if n == 0 {
                    break;
                }
                let chunk = c.take(n)?;
                let room = KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(show(text, &kept))
        }
        Ty::Long { text } => {
            let ptr = c.u8()? as usize;
            if ptr == 0 {
                return Ok(Some("NULL".into()));
            }
            c.take(ptr)?;
            c.take(8)?; // timestamp
            let n = c.u32()? as usize;
            Ok(show(text, c.take(n)?))
        }
        Ty::Variant => {
            let n = c.u32()? as usize;
            c.take(n)?;
            Ok(None)
        }
    }
}

fn show(text: Text, b: &[u8]) -> Option<String> {
    let b = &b[..b.len().min(KEEP)];
    match text {
        Text::No => None,
        Text::Narrow => Some(String::from_utf8_lossy(b).into_owned()),
        Text::Wide => Some(utf16_lossy(b)),
    }
}

/// Integers and bits by their size; other fixed types are not shown.
fn int(id: u8, b: &[u8]) -> Option<String> {
    let bit = matches!(id, 0x32 | 0x68);
    let v = match *b {
        [x] if bit => return Some(u8::from(x != 0).to_string()),
        [x] if matches!(id, 0x30 | 0x26) => i64::from(x),
        [a, b0] if matches!(id, 0x34 | 0x26) => i64::from(i16::from_le_bytes([a, b0])),
        [a, b0, c, d] if matches!(id, 0x38 | 0x26) => i64::from(i32::from_le_bytes([a, b0, c, d])),
        [..] if b.len() == 8 && matches!(id, 0x7F | 0x26) => {
            i64::from_le_bytes(b.try_into().expect("8 bytes"))
        }
        _ => return None,
    };
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(type_info_bytes: &[u8], data: &[u8]) -> Result<Option<String>, String> {
        let mut c = Cur::new(type_info_bytes);
        let t = type_info(&mut c)?.expect("known type");
        assert!(c.at_end(), "TYPE_INFO fully read");
        let mut d = Cur::new(data);
        let v = value(&mut d, &t)?;
        assert!(d.at_end(), "value fully read");
        Ok(v)
    }

    #[test]
    fn integers_and_bits() {
        assert_eq!(
            one(&[0x38], &7i32.to_le_bytes()).unwrap().as_deref(),
            Some("7")
        );
        assert_eq!(one(&[0x30], &[255]).unwrap().as_deref(), Some("255"));
        assert_eq!(
            one(&[0x34], &(-2i16).to_le_bytes()).unwrap().as_deref(),
            Some("-2")
        );
        assert_eq!(
            one(&[0x7F], &(1i64 << 40).to_le_bytes())
                .unwrap()
                .as_deref(),
            Some("1099511627776")
        );
        assert_eq!(one(&[0x32], &[1]).unwrap().as_deref(), Some("1"));
        // INTN(4) with a value, and NULL.
        assert_eq!(
            one(&[0x26, 4], &[4, 9, 0, 0, 0]).unwrap().as_deref(),
            Some("9")
        );
        assert_eq!(one(&[0x26, 8], &[0]).unwrap().as_deref(), Some("NULL"));
        assert_eq!(one(&[0x68, 1], &[1, 0]).unwrap().as_deref(), Some("0"));
    }

    #[test]
    fn strings() {
        // NVARCHAR(10) with a collation: "hé" in UTF-16LE.
        let ti = [0xE7, 20, 0, 0x09, 0x04, 0xD0, 0x00, 0x34];
        assert_eq!(
            one(&ti, &[4, 0, b'h', 0, 0xE9, 0]).unwrap().as_deref(),
            Some("hé")
        );
        assert_eq!(one(&ti, &[0xFF, 0xFF]).unwrap().as_deref(), Some("NULL"));
        // VARCHAR(10).
        let ti = [0xA7, 10, 0, 0x09, 0x04, 0xD0, 0x00, 0x34];
        assert_eq!(
            one(&ti, &[2, 0, b'o', b'k']).unwrap().as_deref(),
            Some("ok")
        );
        // NVARCHAR(max): PLP in two chunks.
        let ti = [0xE7, 0xFF, 0xFF, 0x09, 0x04, 0xD0, 0x00, 0x34];
        let mut d = 4u64.to_le_bytes().to_vec();
        d.extend_from_slice(&[2, 0, 0, 0, b'a', 0, 2, 0, 0, 0, b'b', 0, 0, 0, 0, 0]);
        assert_eq!(one(&ti, &d).unwrap().as_deref(), Some("ab"));
    }

    #[test]
    fn skipped_types_are_read_past() {
        // DATETIME2N(7): scale byte, then a length byte and 8 bytes.
        assert_eq!(one(&[0x2A, 7], &[8, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap(), None);
        // DECIMALN(18,2): length 17, precision, scale; value of 9 bytes.
        assert_eq!(one(&[0x6A, 17, 18, 2], &[5, 1, 1, 0, 0, 0]).unwrap(), None);
        // VARBINARY(16).
        assert_eq!(one(&[0xA5, 16, 0], &[2, 0, 0xAB, 0xCD]).unwrap(), None);
        // IMAGE: pointer of 16, timestamp, 3 bytes.
        let mut d = vec![16];
        d.extend_from_slice(&[0; 16 + 8]);
        d.extend_from_slice(&3u32.to_le_bytes());
        d.extend_from_slice(&[1, 2, 3]);
        assert_eq!(one(&[0x22, 0xFF, 0xFF, 0xFF, 0x7F], &d).unwrap(), None);
    }

    #[test]
    fn unknown_type_stops_and_truncation_is_an_error() {
        let mut c = Cur::new(&[0xF4]);
        let stop = type_info(&mut c).unwrap().unwrap_err();
        assert!(stop.contains("0xf4"), "{stop}");
        assert!(one(&[0x38], &[1, 2]).is_err());
        assert!(one(&[0xE7, 20, 0, 1, 2, 3, 4, 5], &[9, 0, 1]).is_err());
        let mut c = Cur::new(&[0xE7, 20]);
        assert!(type_info(&mut c).is_err());
        // A PLP chunk longer than the message.
        let ti = [0xA5, 0xFF, 0xFF];
        let mut d = 4u64.to_le_bytes().to_vec();
        d.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(one(&ti, &d).is_err());
    }
}
