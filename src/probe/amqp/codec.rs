//! The AMQP 1.0 type system and frames, as far as the probe needs them: every
//! primitive type decodes (a server may send any of them in `open` properties), and the
//! encoder writes the few shapes the probe sends (OASIS AMQP 1.0, part 1 "Types" and
//! part 2 "Transport", section 2.3 frames).
//!
//! Decoding is defensive: a length or count is checked against the bytes that are left
//! before anything is allocated, and nesting is limited, so hostile input is an error,
//! never a panic or a large allocation.

use std::fmt;

/// One decoded AMQP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Ubyte(u8),
    Ushort(u16),
    Uint(u32),
    Ulong(u64),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Char(u32),
    Timestamp(i64),
    Uuid([u8; 16]),
    /// decimal32/64/128, kept as raw bytes.
    Decimal(Vec<u8>),
    Binary(Vec<u8>),
    String(String),
    Symbol(String),
    List(Vec<Value>),
    /// Pairs in wire order.
    Map(Vec<(Value, Value)>),
    Array(Vec<Value>),
    Described(Box<Value>, Box<Value>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(m: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(m.into()))
}

const MAX_DEPTH: usize = 32;

#[path = "encode.rs"]
mod encode;

impl Value {
    /// A described value with a numeric (ulong) descriptor, the form every performative uses.
    pub fn described(code: u64, body: Value) -> Value {
        Value::Described(Box::new(Value::Ulong(code)), Box::new(body))
    }

    pub fn sym(s: &str) -> Value {
        Value::Symbol(s.to_string())
    }

    pub fn str(s: &str) -> Value {
        Value::String(s.to_string())
    }

    /// The numeric descriptor and body of a described value.
    pub fn as_described(&self) -> Option<(u64, &Value)> {
        match self {
            Value::Described(d, b) => match **d {
                Value::Ulong(c) => Some((c, b)),
                Value::Uint(c) => Some((u64::from(c), b)),
                Value::Ubyte(c) => Some((u64::from(c), b)),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_list(&self) -> &[Value] {
        match self {
            Value::List(v) => v,
            _ => &[],
        }
    }

    /// Field `i` of a list-encoded composite; missing trailing fields read as null.
    pub fn field(&self, i: usize) -> &Value {
        self.as_list().get(i).unwrap_or(&Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Symbol(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Ubyte(v) => Some(v.into()),
            Value::Ushort(v) => Some(v.into()),
            Value::Uint(v) => Some(v.into()),
            Value::Ulong(v) => Some(v),
            Value::Byte(v) => u64::try_from(v).ok(),
            Value::Short(v) => u64::try_from(v).ok(),
            Value::Int(v) => u64::try_from(v).ok(),
            Value::Long(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A symbol, or every symbol of an array or list (AMQP's "multiple" fields).
    pub fn symbols(&self) -> Vec<String> {
        match self {
            Value::Symbol(s) | Value::String(s) => vec![s.clone()],
            Value::Array(v) | Value::List(v) => v
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Looks a key up in a map by its string or symbol text.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Reads values off a byte slice.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return err(format!(
                "truncated: need {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn value(&mut self) -> Result<Value, DecodeError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let code = self.u8()?;
        self.with_ctor(code, depth)
    }

    fn with_ctor(&mut self, code: u8, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return err("nested too deeply");
        }
        if code == 0x00 {
            let d = self.value_at(depth + 1)?;
            let b = self.value_at(depth + 1)?;
            return Ok(Value::Described(Box::new(d), Box::new(b)));
        }
        Ok(match code {
            0x40 => Value::Null,
            0x41 => Value::Bool(true),
            0x42 => Value::Bool(false),
            0x56 => Value::Bool(self.u8()? != 0),
            0x50 => Value::Ubyte(self.u8()?),
            0x60 => Value::Ushort(u16::from_be_bytes(self.arr()?)),
            0x70 => Value::Uint(u32::from_be_bytes(self.arr()?)),
            0x52 => Value::Uint(self.u8()?.into()),
            0x43 => Value::Uint(0),
            0x80 => Value::Ulong(u64::from_be_bytes(self.arr()?)),
            0x53 => Value::Ulong(self.u8()?.into()),
            0x44 => Value::Ulong(0),
            0x51 => Value::Byte(self.u8()? as i8),
            0x61 => Value::Short(i16::from_be_bytes(self.arr()?)),
            0x71 => Value::Int(i32::from_be_bytes(self.arr()?)),
            0x54 => Value::Int((self.u8()? as i8).into()),
            0x81 => Value::Long(i64::from_be_bytes(self.arr()?)),
            0x55 => Value::Long((self.u8()? as i8).into()),
            0x72 => Value::Float(f32::from_be_bytes(self.arr()?)),
            0x82 => Value::Double(f64::from_be_bytes(self.arr()?)),
            0x74 => Value::Decimal(self.take(4)?.to_vec()),
            0x84 => Value::Decimal(self.take(8)?.to_vec()),
            0x94 => Value::Decimal(self.take(16)?.to_vec()),
            0x73 => Value::Char(u32::from_be_bytes(self.arr()?)),
            0x83 => Value::Timestamp(i64::from_be_bytes(self.arr()?)),
            0x98 => Value::Uuid(self.arr()?),
            0xa0 | 0xb0 | 0xa1 | 0xb1 | 0xa3 | 0xb3 => {
                let n = if code & 0xf0 == 0xa0 {
                    self.u8()? as usize
                } else {
                    u32::from_be_bytes(self.arr()?) as usize
                };
                let bytes = self.take(n)?;
                match code & 0x0f {
                    0x00 => Value::Binary(bytes.to_vec()),
                    0x01 => Value::String(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| DecodeError("string is not UTF-8".into()))?,
                    ),
                    _ => Value::Symbol(String::from_utf8_lossy(bytes).into_owned()),
                }
            }
            0x45 => Value::List(Vec::new()),
            0xc0 | 0xd0 | 0xc1 | 0xd1 => {
                let (size, count) = self.size_count(code & 0xf0 == 0xc0)?;
                let body = self.take(size)?;
                let mut inner = Decoder::new(body);
                // Every element is at least one byte: a count beyond the body is a lie.
                if count > body.len() {
                    return err(format!("count {count} exceeds {} body bytes", body.len()));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(inner.value_at(depth + 1)?);
                }
                if code & 0x0f == 0x00 {
                    Value::List(items)
                } else {
                    if count % 2 != 0 {
                        return err("map with an odd element count");
                    }
                    let mut pairs = Vec::with_capacity(count / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Value::Map(pairs)
                }
            }
            0xe0 | 0xf0 => {
                let (size, count) = self.size_count(code == 0xe0)?;
                let body = self.take(size)?;
                let mut inner = Decoder::new(body);
                if count > body.len() {
                    return err(format!("count {count} exceeds {} body bytes", body.len()));
                }
                let ctor = inner.u8()?;
                let descriptor = if ctor == 0x00 {
                    Some(inner.value_at(depth + 1)?)
                } else {
                    None
                };
                let elem = if ctor == 0x00 { inner.u8()? } else { ctor };
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    let v = inner.with_ctor(elem, depth + 1)?;
                    items.push(match &descriptor {
                        Some(d) => Value::Described(Box::new(d.clone()), Box::new(v)),
                        None => v,
                    });
                }
                Value::Array(items)
            }
            other => return err(format!("unknown format code 0x{other:02x}")),
        })
    }

    fn size_count(&mut self, small: bool) -> Result<(usize, usize), DecodeError> {
        if small {
            let size = self.u8()? as usize;
            if size < 1 {
                return err("compound size 0");
            }
            let count = self.u8()? as usize;
            Ok((size - 1, count))
        } else {
            let size = u32::from_be_bytes(self.arr()?) as usize;
            if size < 4 {
                return err("compound size below 4");
            }
            let count = u32::from_be_bytes(self.arr()?) as usize;
            Ok((size - 4, count))
        }
    }
}

/// Frame types (part 2, 2.3.1).
pub const FRAME_AMQP: u8 = 0;
pub const FRAME_SASL: u8 = 1;

/// One frame: its type, channel, the performative and whatever follows it (a
/// transfer's message payload). An empty body (a heartbeat) has no performative.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub kind: u8,
    pub channel: u16,
    pub performative: Option<Value>,
    pub payload: Vec<u8>,
}

/// Encodes a frame with a performative and an optional payload.
pub fn encode_frame(kind: u8, channel: u16, performative: &Value, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    performative.encode(&mut body);
    body.extend(payload);
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend((8 + body.len() as u32).to_be_bytes());
    out.extend([2, kind]);
    out.extend(channel.to_be_bytes());
    out.extend(body);
    out
}

/// Parses a frame from its 8-byte header and the rest of its bytes.
pub fn decode_frame(header: [u8; 8], rest: &[u8]) -> Result<Frame, DecodeError> {
    let doff = header[4] as usize;
    if doff < 2 {
        return err(format!("data offset {doff} below 2"));
    }
    let skip = doff * 4 - 8;
    if skip > rest.len() {
        return err("data offset beyond the frame");
    }
    let body = &rest[skip..];
    let channel = u16::from_be_bytes([header[6], header[7]]);
    if body.is_empty() {
        return Ok(Frame {
            kind: header[5],
            channel,
            performative: None,
            payload: Vec::new(),
        });
    }
    let mut d = Decoder::new(body);
    let performative = d.value()?;
    Ok(Frame {
        kind: header[5],
        channel,
        performative: Some(performative),
        payload: body[d.position()..].to_vec(),
    })
}

/// Decodes every section of a message payload (a list of described values).
pub fn decode_sections(payload: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut d = Decoder::new(payload);
    let mut out = Vec::new();
    while d.remaining() > 0 {
        out.push(d.value()?);
    }
    Ok(out)
}

/// Descriptor codes of the performatives, sections and composites the probe uses.
pub mod code {
    pub const OPEN: u64 = 0x10;
    pub const BEGIN: u64 = 0x11;
    pub const ATTACH: u64 = 0x12;
    pub const FLOW: u64 = 0x13;
    pub const TRANSFER: u64 = 0x14;
    pub const DISPOSITION: u64 = 0x15;
    pub const DETACH: u64 = 0x16;
    pub const END: u64 = 0x17;
    pub const CLOSE: u64 = 0x18;
    pub const ERROR: u64 = 0x1d;
    pub const SOURCE: u64 = 0x28;
    pub const TARGET: u64 = 0x29;
    pub const SASL_MECHANISMS: u64 = 0x40;
    pub const SASL_INIT: u64 = 0x41;
    pub const SASL_CHALLENGE: u64 = 0x42;
    pub const SASL_OUTCOME: u64 = 0x44;
    pub const PROPERTIES: u64 = 0x73;
    pub const APPLICATION_PROPERTIES: u64 = 0x74;
    pub const AMQP_VALUE: u64 = 0x77;
}
