//! Raw HTTP/1.1 exchanges and JSON written in the host's key order.

use super::*;

// ---------------------------------------------------------------- raw HTTP/1.1

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// How a request body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    ContentLength,
    /// Sent as several chunks, so the server must reassemble them.
    Chunked,
}

/// One request, raw: `head` is the request line plus headers without the final blank
/// line; framing headers for `body` are added here.
pub async fn send(
    addr: SocketAddr,
    head: &str,
    body: Option<&[u8]>,
    framing: Framing,
) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.expect("connect to handler");
    let mut out = head.trim_end_matches("\r\n").to_string();
    out.push_str("\r\n");
    match (body, framing) {
        (Some(b), Framing::ContentLength) => {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()))
        }
        (Some(_), Framing::Chunked) => out.push_str("Transfer-Encoding: chunked\r\n\r\n"),
        (None, _) => out.push_str("\r\n"),
    }
    let mut bytes = out.into_bytes();
    if let Some(b) = body {
        match framing {
            Framing::ContentLength => bytes.extend_from_slice(b),
            Framing::Chunked => {
                // Uneven chunks, so a server that reads one chunk only is caught.
                for chunk in b.chunks(7.max(b.len() / 3)) {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            }
        }
    }
    // Written from a task so a server that answers before reading everything (413)
    // cannot deadlock the test on a full socket buffer.
    let (mut rd, mut wr) = s.split();
    let write = async {
        let _ = wr.write_all(&bytes).await;
    };
    let read = read_response(&mut rd);
    let ((), resp) = tokio::join!(write, read);
    drop(s);
    resp
}

/// Reads exactly one response (Content-Length, chunked, or until close).
pub async fn read_response<R: AsyncReadExt + Unpin>(r: &mut R) -> RawResponse {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let mut tmp = [0u8; 4096];
        let n = r.read(&mut tmp).await.expect("read response head");
        assert!(
            n > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut rest = buf[head_end + 4..].to_vec();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = get("content-length") {
        let len: usize = len.parse().expect("content-length");
        while rest.len() < len {
            let mut tmp = [0u8; 8192];
            let n = r.read(&mut tmp).await.expect("read body");
            assert!(n > 0, "closed inside the body");
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            if let Some(b) = dechunk(&rest) {
                break b;
            }
            let mut tmp = [0u8; 8192];
            let n = r.read(&mut tmp).await.expect("read chunk");
            assert!(n > 0, "closed inside a chunked body");
            rest.extend_from_slice(&tmp[..n]);
        }
    } else {
        let _ = r.read_to_end(&mut rest).await;
        rest
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The decoded body once the terminating chunk has arrived.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let i = find(b, b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..i]).ok()?.split(';').next()?.trim(),
            16,
        )
        .ok()?;
        b = &b[i + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// The class of a handler's JSON error body (`{"error": {"class": ...}}`).
pub fn error_class(body: &Value) -> &str {
    body["error"]["class"]
        .as_str()
        .unwrap_or_else(|| panic!("no error class in {body}"))
}

// ---------------------------------------------------------------- ordered JSON

/// A JSON string literal.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A JSON object with keys in the given order (the host's serializer keeps declaration
/// order; serde_json's map would sort them). Values are JSON text already.
pub fn obj(pairs: &[(&str, String)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{v}", js(k)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// What the host does to a string in Data/Metadata: JSON-encodes it a second time.
pub fn double(s: &str) -> String {
    js(&js(s))
}
