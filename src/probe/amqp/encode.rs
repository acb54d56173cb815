//! The encoder side of `codec`: AMQP values to bytes, in the compact forms (`uint0`,
//! `smallulong`, `str8`, ...) where they fit.

use super::Value;

impl Value {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0x40),
            Value::Bool(true) => out.push(0x41),
            Value::Bool(false) => out.push(0x42),
            Value::Ubyte(v) => out.extend([0x50, *v]),
            Value::Ushort(v) => {
                out.push(0x60);
                out.extend(v.to_be_bytes());
            }
            Value::Uint(0) => out.push(0x43),
            Value::Uint(v) if *v < 256 => out.extend([0x52, *v as u8]),
            Value::Uint(v) => {
                out.push(0x70);
                out.extend(v.to_be_bytes());
            }
            Value::Ulong(0) => out.push(0x44),
            Value::Ulong(v) if *v < 256 => out.extend([0x53, *v as u8]),
            Value::Ulong(v) => {
                out.push(0x80);
                out.extend(v.to_be_bytes());
            }
            Value::Byte(v) => out.extend([0x51, *v as u8]),
            Value::Short(v) => {
                out.push(0x61);
                out.extend(v.to_be_bytes());
            }
            Value::Int(v) => {
                out.push(0x71);
                out.extend(v.to_be_bytes());
            }
            Value::Long(v) => {
                out.push(0x81);
                out.extend(v.to_be_bytes());
            }
            Value::Float(v) => {
                out.push(0x72);
                out.extend(v.to_be_bytes());
            }
            Value::Double(v) => {
                out.push(0x82);
                out.extend(v.to_be_bytes());
            }
            Value::Char(v) => {
                out.push(0x73);
                out.extend(v.to_be_bytes());
            }
            Value::Timestamp(v) => {
                out.push(0x83);
                out.extend(v.to_be_bytes());
            }
            Value::Uuid(v) => {
                out.push(0x98);
                out.extend(v);
            }
            Value::Decimal(v) => {
                out.push(match v.len() {
                    4 => 0x74,
                    8 => 0x84,
                    _ => 0x94,
                });
                out.extend(v);
            }
            Value::Binary(b) => var(out, 0xa0, 0xb0, b),
            Value::String(s) => var(out, 0xa1, 0xb1, s.as_bytes()),
            Value::Symbol(s) => var(out, 0xa3, 0xb3, s.as_bytes()),
            Value::List(items) if items.is_empty() => out.push(0x45),
            Value::List(items) => {
                let mut body = Vec::new();
                items.iter().for_each(|v| v.encode(&mut body));
                compound(out, 0xd0, items.len(), &body);
            }
            Value::Map(pairs) => {
                let mut body = Vec::new();
                for (k, v) in pairs {
                    k.encode(&mut body);
                    v.encode(&mut body);
                }
                compound(out, 0xd1, pairs.len() * 2, &body);
            }
            Value::Array(items) => {
                // Elements share one constructor: take the first element's, written
                // in its widest form so every element fits.
                let mut body = Vec::new();
                if let Some(first) = items.first() {
                    let mut one = Vec::new();
                    first.encode(&mut one);
                    let ctor = match one[0] {
                        0xa3 => 0xb3,
                        0xa1 => 0xb1,
                        0xa0 => 0xb0,
                        c => c,
                    };
                    body.push(ctor);
                    for v in items {
                        let mut e = Vec::new();
                        v.encode(&mut e);
                        match (ctor, e[0]) {
                            (0xb3 | 0xb1 | 0xb0, 0xa3 | 0xa1 | 0xa0) => {
                                body.extend((e.len() as u32 - 2).to_be_bytes());
                                body.extend(&e[2..]);
                            }
                            _ => body.extend(&e[1..]),
                        }
                    }
                } else {
                    body.push(0x40);
                }
                compound(out, 0xf0, items.len(), &body);
            }
            Value::Described(d, b) => {
                out.push(0x00);
                d.encode(out);
                b.encode(out);
            }
        }
    }
}

fn var(out: &mut Vec<u8>, small: u8, large: u8, bytes: &[u8]) {
    if bytes.len() < 256 {
        out.extend([small, bytes.len() as u8]);
    } else {
        out.push(large);
        out.extend((bytes.len() as u32).to_be_bytes());
    }
    out.extend(bytes);
}

fn compound(out: &mut Vec<u8>, code: u8, count: usize, body: &[u8]) {
    out.push(code);
    out.extend((body.len() as u32 + 4).to_be_bytes());
    out.extend((count as u32).to_be_bytes());
    out.extend(body);
}
