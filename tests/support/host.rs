//! A Functions host emulator: talks to a custom handler exactly as
//! docs/host-contract.md (Part 2) says the real host (azure-functions-host 4.x) does, in
//! raw HTTP/1.1 bytes so framing (chunked bodies, header spelling) is under the test's
//! control, and judges the handler's replies by the host's own rules.
//!
//! The exchanges are labelled G1-G7 here and in tests/handler: G1 readiness, G2 the
//! timer in steady state, G3 its variants (first run, unmonitored, past due), G4 an HTTP
//! trigger in payload mode, G5 forward mode, G6 proxy mode, G7 the failure cases.
//!
//! - `wait_ready`: the readiness poll (`GET /` every 25 ms, refused = keep waiting).
//! - `forward`: `enableForwardingHttpRequest` (Forward mode): original path, `code=` kept, query
//!   rebuilt with repeated keys comma-joined, UA appended, invocation headers, body only
//!   with a Content-Length (a chunked upload loses its body).
//! - `proxy`: `enableProxyingHttpRequest` (Proxy mode): raw query, Host rewritten, X-Forwarded-*,
//!   `x-ms-invocation-id`, bodies streamed (chunked stays chunked).
//! - `payload_http` / `timer`: payload mode (Payload mode): `POST /{FunctionName}` with a chunked
//!   `{"Data","Metadata"}` body: headers as arrays in `Data.req`, double-encoded strings
//!   in `Metadata`; the reply is interpreted as the host would (G7).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const HOST_VERSION: &str = "4.1037.0.0";
/// Where the caller thinks the app is (Core Tools' default).
pub const FRONT_HOST: &str = "localhost:7071";

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

// ---------------------------------------------------------------- the caller

/// The request the caller sent to the Functions front end.
#[derive(Debug, Clone)]
pub struct Caller {
    pub method: &'static str,
    /// Path and query as the caller wrote them, e.g. `/api/probe?name=a&name=b&code=KEY`.
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// The caller uploaded without Content-Length.
    pub chunked: bool,
}

impl Caller {
    pub fn get(path_and_query: &str) -> Caller {
        Caller {
            method: "GET",
            path_and_query: path_and_query.to_string(),
            headers: vec![
                ("User-Agent".into(), "curl/8.5.0".into()),
                ("Accept".into(), "*/*".into()),
            ],
            body: None,
            chunked: false,
        }
    }

    pub fn post(path_and_query: &str, content_type: &str, body: &[u8]) -> Caller {
        let mut c = Caller::get(path_and_query);
        c.method = "POST";
        c.headers.push(("Content-Type".into(), content_type.into()));
        c.body = Some(body.to_vec());
        c
    }

    pub fn header(mut self, k: &str, v: &str) -> Caller {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn chunked(mut self) -> Caller {
        self.chunked = true;
        self
    }

    fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap()
    }

    fn raw_query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// Query pairs grouped by key (first-seen order), values comma-joined: ASP.NET's
    /// `IQueryCollection` as the host reads it.
    fn query_groups(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(self.raw_query().unwrap_or("").as_bytes()) {
            match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&k)) {
                Some((_, vs)) => vs.push(v.into_owned()),
                None => out.push((k.into_owned(), vec![v.into_owned()])),
            }
        }
        out.into_iter().map(|(k, vs)| (k, vs.join(","))).collect()
    }

    fn has_content_length_body(&self) -> bool {
        !self.chunked && self.body.as_ref().is_some_and(|b| !b.is_empty())
    }
}

fn enc(s: &str) -> String {
    // form_urlencoded writes a space as '+'; the host's rebuild writes %20.
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

// ---------------------------------------------------------------- the host

/// What the host makes of a payload-mode reply (docs/host-contract.md, Payload mode; G7).
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The invocation succeeded; for an HTTP function `caller` is what the caller gets.
    Succeeded {
        logs: Vec<String>,
        outputs: Map<String, Value>,
        return_value: Value,
        caller: Option<CallerView>,
    },
    /// The invocation failed (the HTTP caller would get a bare 500).
    Failed(String),
    /// Empty or `null` body: the real host would hang until functionTimeout.
    Hangs,
}

impl Outcome {
    pub fn succeeded(self) -> (Vec<String>, Map<String, Value>, Value, Option<CallerView>) {
        match self {
            Outcome::Succeeded {
                logs,
                outputs,
                return_value,
                caller,
            } => (logs, outputs, return_value, caller),
            other => panic!("invocation did not succeed: {other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CallerView {
    pub status: u16,
    pub headers: Map<String, Value>,
    pub body: String,
}

impl CallerView {
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .and_then(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("caller body is not JSON ({e}): {}", self.body))
    }
}

/// Judges a payload-mode reply as the host does. `http_output` names the function's
/// `http` output binding (`res`) for HTTP functions; `None` for the timer.
pub fn judge(resp: &RawResponse, http_output: Option<&str>) -> Outcome {
    if !(200..300).contains(&resp.status) {
        return Outcome::Failed(format!("status {} (EnsureSuccessStatusCode)", resp.status));
    }
    let ct = resp
        .header("content-type")
        .unwrap_or("application/octet-stream");
    let mime = ct.split(';').next().unwrap().trim().to_ascii_lowercase();
    if mime != "application/json" && mime != "text/json" {
        return Outcome::Failed(format!("UnsupportedMediaType: {ct}"));
    }
    if resp.body.iter().all(u8::is_ascii_whitespace) {
        return Outcome::Hangs;
    }
    let v: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => return Outcome::Failed(format!("invalid JSON: {e}")),
    };
    let Value::Object(top) = v else {
        return if v.is_null() {
            Outcome::Hangs
        } else {
            Outcome::Failed("reply is not an object".into())
        };
    };
    let get = |k: &str| {
        top.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let outputs = match get("Outputs") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Outcome::Failed(format!("Outputs is not an object: {other}")),
    };
    let logs = match get("Logs") {
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|l| match l {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => return Outcome::Failed(format!("Logs is not an array: {other}")),
    };
    let return_value = get("ReturnValue").unwrap_or(Value::Null);
    let caller = match http_output {
        None => None,
        Some(name) => match outputs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
        {
            // res missing: the caller gets 200 with `{}`.
            None => Some(CallerView {
                status: 200,
                headers: Map::new(),
                body: "{}".into(),
            }),
            Some(Value::Object(res)) => match http_response(res) {
                Ok(c) => Some(c),
                Err(e) => return Outcome::Failed(e),
            },
            Some(other) => {
                return Outcome::Failed(format!(
                    "Failed while trying to Deserialize to httpOutputBindingResponse: {other}"
                ));
            }
        },
    };
    Outcome::Succeeded {
        logs,
        outputs,
        return_value,
        caller,
    }
}

/// `HttpBinding` on the output object: `statusCode` only (`status` is ignored, absent
/// means 200), header values must be strings, an object body is sent indented.
fn http_response(res: &Map<String, Value>) -> Result<CallerView, String> {
    let get = |k: &str| {
        res.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let status = match get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => n.as_u64().ok_or("statusCode is not an integer")? as u16,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("statusCode `{s}` is not a number"))?,
        Some(other) => return Err(format!("statusCode {other} is not a number")),
    };
    let headers = match get("headers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(h)) => {
            for (k, v) in h {
                if !v.is_string() {
                    return Err(format!("header {k} is not a string: {v}"));
                }
            }
            h.clone()
        }
        Some(other) => return Err(format!("headers is not an object: {other}")),
    };
    let body = match get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => serde_json::to_string_pretty(other).unwrap(),
    };
    Ok(CallerView {
        status,
        headers,
        body,
    })
}

/// Timer states from docs/host-contract.md, The `scheduled` timer (G2, G3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerStatus {
    /// Monitored, steady state (G2).
    Steady,
    /// Nothing stored yet: `0001-01-01` dates (G3).
    FirstRun,
    /// `useMonitor: false` or sub-minute: `ScheduleStatus: null` (G3).
    Unmonitored,
    /// The host missed an occurrence (G3).
    PastDue,
}

pub struct Host {
    pub addr: SocketAddr,
}

impl Host {
    pub fn new(addr: SocketAddr) -> Host {
        Host { addr }
    }

    /// G1: `GET /` every 25 ms until any HTTP answer; connection refused means "not
    /// yet" (the host gives up after 30 s). Returns the response and the attempts made.
    pub async fn wait_ready(&self) -> (RawResponse, u32) {
        let head = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}", self.addr.port());
        for attempt in 1..=1200 {
            match TcpStream::connect(self.addr).await {
                Ok(mut s) => {
                    s.write_all(format!("{head}\r\n\r\n").as_bytes())
                        .await
                        .expect("write readiness probe");
                    return (read_response(&mut s).await, attempt);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => panic!("readiness poll: {e}"),
            }
        }
        panic!("Initializing HttpWorker timed out.");
    }

    fn invocation_headers(&self, iid: &str, traceparent: Option<&str>) -> String {
        let mut h = format!(
            "X-Azure-Functions-HostVersion: {HOST_VERSION}\r\nX-Azure-Functions-InvocationId: {iid}\r\n"
        );
        if let Some(tp) = traceparent {
            h.push_str(&format!("traceparent: {tp}\r\n"));
        }
        h
    }

    /// G5: forward mode.
    pub async fn forward(&self, c: &Caller, iid: &str, traceparent: Option<&str>) -> RawResponse {
        let groups = c.query_groups();
        let query = groups
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let target = if query.is_empty() {
            c.path().to_string()
        } else {
            format!("{}?{query}", c.path())
        };
        let mut head = format!("{} {target} HTTP/1.1\r\nHost: {FRONT_HOST}\r\n", c.method);
        let mut has_ua = false;
        for (k, v) in &c.headers {
            if k.eq_ignore_ascii_case("user-agent") {
                has_ua = true;
                head.push_str(&format!(
                    "User-Agent: {v} Azure-Functions-Host/{HOST_VERSION}\r\n"
                ));
            } else {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if !has_ua {
            head.push_str(&format!(
                "User-Agent: Azure-Functions-Host/{HOST_VERSION}\r\n"
            ));
        }
        head.push_str(&self.invocation_headers(iid, traceparent));
        // The body travels only when the caller sent a Content-Length.
        let body = c.has_content_length_body().then(|| c.body.clone().unwrap());
        send(self.addr, &head, body.as_deref(), Framing::ContentLength).await
    }

    /// G6: proxy mode (YARP).
    pub async fn proxy(&self, c: &Caller, iid: &str, traceparent: Option<&str>) -> RawResponse {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            c.method,
            c.path_and_query,
            self.addr.port()
        );
        for (k, v) in &c.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&self.invocation_headers(iid, traceparent));
        head.push_str(&format!(
            "x-ms-invocation-id: {iid}\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: {FRONT_HOST}\r\n"
        ));
        let framing = if c.chunked {
            Framing::Chunked
        } else {
            Framing::ContentLength
        };
        send(self.addr, &head, c.body.as_deref(), framing).await
    }

    /// The payload-mode request line and headers (docs/host-contract.md, Payload mode).
    fn payload_head(&self, function: &str, iid: &str, traceparent: Option<&str>) -> String {
        format!(
            "POST /{function} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}User-Agent: Azure-Functions-Host/{HOST_VERSION}\r\nContent-Type: application/json; charset=utf-8",
            self.addr.port(),
            self.invocation_headers(iid, traceparent)
        )
    }

    /// Sends any payload-mode body (chunked, as the host's ObjectContent is).
    pub async fn post_payload(&self, function: &str, body: &str, iid: &str) -> RawResponse {
        send(
            self.addr,
            &self.payload_head(function, iid, None),
            Some(body.as_bytes()),
            Framing::Chunked,
        )
        .await
    }

    /// G4: an HTTP trigger in payload mode. The `{"Data":{"req":…},"Metadata":{…}}` body
    /// is built as `GetRequestAsJObject` and `GetRequestBindingData` build it.
    pub fn http_envelope(&self, function: &str, c: &Caller) -> String {
        let groups = c.query_groups();
        let query_obj = obj(&groups
            .iter()
            .map(|(k, v)| (k.as_str(), js(v)))
            .collect::<Vec<_>>());
        let mut header_pairs: Vec<(String, Vec<String>)> =
            vec![("Host".into(), vec![FRONT_HOST.into()])];
        for (k, v) in &c.headers {
            header_pairs.push((k.clone(), vec![v.clone()]));
        }
        if c.has_content_length_body() {
            header_pairs.push((
                "Content-Length".into(),
                vec![c.body.as_ref().unwrap().len().to_string()],
            ));
        }
        let headers_arrays = obj(&header_pairs
            .iter()
            .map(|(k, vs)| {
                (
                    k.as_str(),
                    format!(
                        "[{}]",
                        vs.iter().map(|v| js(v)).collect::<Vec<_>>().join(",")
                    ),
                )
            })
            .collect::<Vec<_>>());
        let headers_joined = obj(&header_pairs
            .iter()
            .map(|(k, vs)| (k.as_str(), js(&vs.join(","))))
            .collect::<Vec<_>>());
        let identity = obj(&[
            ("AuthenticationType", "null".into()),
            ("IsAuthenticated", "false".into()),
            ("Actor", "null".into()),
            ("BootstrapContext", "null".into()),
            ("Claims", "[]".into()),
            ("Label", "null".into()),
            ("Name", "null".into()),
            (
                "NameClaimType",
                js("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"),
            ),
            (
                "RoleClaimType",
                js("http://schemas.microsoft.com/ws/2008/06/identity/claims/role"),
            ),
        ]);
        let url = format!("http://{FRONT_HOST}{}", c.path_and_query);
        let mut req = vec![
            ("Url", js(&url)),
            ("Method", js(c.method)),
            ("Query", query_obj.clone()),
            ("Headers", headers_arrays),
            ("Params", "{}".to_string()),
            ("Identities", format!("[{identity}]")),
        ];
        let body_text = c
            .body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        if c.has_content_length_body() {
            req.push(("Body", js(body_text.as_deref().unwrap())));
        }
        // Metadata: top-level non-array body properties, query params but `code`, both
        // double-encoded; then Query, Headers (joined strings), sys.
        let mut meta: Vec<(String, String)> = Vec::new();
        if let Some(Ok(Value::Object(m))) = body_text.as_deref().map(serde_json::from_str::<Value>)
        {
            for (k, v) in m {
                if !v.is_array() {
                    let s = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    meta.push((k, double(&s)));
                }
            }
        }
        for (k, v) in &groups {
            if !k.eq_ignore_ascii_case("code") {
                meta.push((k.clone(), double(v)));
            }
        }
        meta.push(("Query".into(), query_obj));
        meta.push(("Headers".into(), headers_joined));
        meta.push(("sys".into(), sys(function)));
        let meta_ref: Vec<(&str, String)> =
            meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        obj(&[
            ("Data", obj(&[("req", obj(&req))])),
            ("Metadata", obj(&meta_ref)),
        ])
    }

    pub async fn payload_http(
        &self,
        function: &str,
        c: &Caller,
        iid: &str,
        traceparent: Option<&str>,
    ) -> (RawResponse, Outcome) {
        let body = self.http_envelope(function, c);
        let resp = send(
            self.addr,
            &self.payload_head(function, iid, traceparent),
            Some(body.as_bytes()),
            Framing::Chunked,
        )
        .await;
        let outcome = judge(&resp, Some("res"));
        (resp, outcome)
    }

    /// G2/G3: the timer body, byte for byte as the contract shows it (compact, keys in
    /// declaration order, local-time dates with an offset).
    pub fn timer_envelope(
        function: &str,
        binding: &str,
        status: TimerStatus,
        retry: bool,
    ) -> String {
        let schedule_status = match status {
            TimerStatus::Unmonitored => "null".to_string(),
            TimerStatus::FirstRun => obj(&[
                ("Last", js("0001-01-01T00:00:00+00:00")),
                ("Next", js("2025-01-15T10:05:00+00:00")),
                ("LastUpdated", js("0001-01-01T00:00:00+00:00")),
            ]),
            TimerStatus::Steady | TimerStatus::PastDue => obj(&[
                ("Last", js("2025-01-15T10:00:00.0019273+00:00")),
                ("Next", js("2025-01-15T10:05:00+00:00")),
                ("LastUpdated", js("2025-01-15T10:00:00.0019273+00:00")),
            ]),
        };
        let timer = obj(&[
            ("Schedule", obj(&[("AdjustForDST", "true".into())])),
            ("ScheduleStatus", schedule_status),
            ("IsPastDue", (status == TimerStatus::PastDue).to_string()),
        ]);
        let mut meta = vec![("sys", sys(function))];
        if retry {
            meta.insert(
                0,
                (
                    "RetryContext",
                    obj(&[
                        ("RetryCount", "0".into()),
                        ("MaxRetryCount", "2".into()),
                        ("Exception", "null".into()),
                        ("Instance", "null".into()),
                        ("State", "{}".into()),
                    ]),
                ),
            );
        }
        obj(&[("Data", obj(&[(binding, timer)])), ("Metadata", obj(&meta))])
    }

    pub async fn timer(
        &self,
        function: &str,
        binding: &str,
        status: TimerStatus,
        iid: &str,
    ) -> (RawResponse, Outcome) {
        let body = Host::timer_envelope(function, binding, status, false);
        let resp = self.post_payload(function, &body, iid).await;
        let outcome = judge(&resp, None);
        (resp, outcome)
    }
}

fn sys(function: &str) -> String {
    obj(&[
        ("MethodName", js(function)),
        ("UtcNow", js("2025-01-15T10:05:00.0031456Z")),
        ("RandGuid", js("3c9d1a52-7f0e-4b8e-9d61-0f2a5b7c8e14")),
    ])
}

// ---------------------------------------------------------------- the app under test

/// The handler under test on 127.0.0.1:0 with loopback peers: a Private-DNS-shaped
/// zone (`support::dns`), an open port and a closed one. Nothing leaves 127.0.0.0/8.
pub struct App {
    pub host: Host,
    pub state: std::sync::Arc<routeproof::handler::State>,
    pub dns: super::dns::DnsServer,
    pub open: SocketAddr,
    pub closed: SocketAddr,
    _listener: tokio::net::TcpListener,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Three targets that pass: a private endpoint by name, an IP, a DNS-only check.
pub const TARGETS_OK: &str = r#"
[[targets]]
name = "sql"
target = "tcp://loopsql.database.windows.net:{open}"
private = true

[[targets]]
name = "api"
target = "tcp://127.0.0.1:{open}"

[[targets]]
name = "pe-dns"
target = "dns://myserver.database.windows.net"
private = true
"#;

/// `TARGETS_OK` plus one that fails (`tcp.refused`).
pub const TARGETS_MIXED: &str = r#"
[[targets]]
name = "sql"
target = "tcp://loopsql.database.windows.net:{open}"
private = true

[[targets]]
name = "api"
target = "tcp://127.0.0.1:{open}"

[[targets]]
name = "pe-dns"
target = "dns://myserver.database.windows.net"
private = true

[[targets]]
name = "down"
target = "tcp://127.0.0.1:{closed}"
"#;

impl App {
    pub async fn start(targets: &str) -> App {
        App::start_with(targets, routeproof::handler::Settings::default(), None).await
    }

    /// `dns` overrides the DNS server the engine asks (e.g. a gate in front of it).
    pub async fn start_with(
        targets: &str,
        settings: routeproof::handler::Settings,
        dns: Option<SocketAddr>,
    ) -> App {
        let server = super::dns::DnsServer::start(super::dns::Zone::privatelink_fixture()).await;
        // Held but never accepted from: the kernel completes the handshake.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let text = format!(
            "[engine]\ndns_servers = [\"{}\"]\ndeadline = \"60s\"\ntcp_settle = \"0s\"\n[engine.timeouts]\ndns = \"30s\"\ntcp = \"5s\"\n{}",
            dns.unwrap_or(server.addr),
            targets
                .replace("{open}", &open.port().to_string())
                .replace("{closed}", &closed.port().to_string())
        );
        let cfg = routeproof::config::parse(&text, &|_| None).expect("test config");
        let state = routeproof::handler::State::new(cfg, settings, &|_| None).expect("state");
        let handler = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = handler.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(routeproof::handler::run(
            handler,
            std::sync::Arc::clone(&state),
            async move {
                let _ = stopped.await;
            },
        ));
        App {
            host: Host::new(addr),
            state,
            dns: server,
            open,
            closed,
            _listener: listener,
            stop: Some(stop),
        }
    }
}
