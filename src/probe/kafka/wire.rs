//! Kafka's classic (non-flexible) encodings: big-endian integers, int16-length strings,
//! int32-length bytes and arrays (Apache Kafka protocol guide, "Protocol Primitive Types").

/// The answer ended early or held an impossible length.
#[derive(Debug, Clone, Copy)]
pub struct Short;

/// A size-prefixed request with header v1 (api key, version, correlation id, client id).
pub fn request(key: i16, version: i16, correlation: i32, client_id: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(14 + client_id.len() + body.len());
    m.extend(key.to_be_bytes());
    m.extend(version.to_be_bytes());
    m.extend(correlation.to_be_bytes());
    string(&mut m, client_id);
    m.extend(body);
    let mut out = (m.len() as u32).to_be_bytes().to_vec();
    out.extend(m);
    out
}

pub fn string(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.extend((b.len() as i16).to_be_bytes());
    out.extend(b);
}

pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend((b.len() as i32).to_be_bytes());
    out.extend(b);
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if self.buf.len() - self.pos < n {
            return Err(Short);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn i16(&mut self) -> Result<i16, Short> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().map_err(|_| Short)?,
        ))
    }

    pub fn i32(&mut self) -> Result<i32, Short> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().map_err(|_| Short)?,
        ))
    }

    pub fn i64(&mut self) -> Result<i64, Short> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| Short)?,
        ))
    }

    /// A nullable string (length -1 = null).
    pub fn string(&mut self) -> Result<Option<String>, Short> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(self.take(n as usize)?).into_owned(),
        ))
    }

    pub fn bytes(&mut self) -> Result<Option<&'a [u8]>, Short> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        self.take(n as usize).map(Some)
    }

    /// An array length; null (-1) reads as empty, and a count larger than the bytes
    /// left (every element is at least one byte) is an error, not an allocation.
    pub fn array_len(&mut self) -> Result<usize, Short> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(0);
        }
        let n = n as usize;
        if n > self.buf.len() - self.pos {
            return Err(Short);
        }
        Ok(n)
    }
}
