//! The caller at the front end, and how the host judges a payload-mode reply.

use super::*;

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

    pub(super) fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap()
    }

    pub(super) fn raw_query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// Query pairs grouped by key (first-seen order), values comma-joined: ASP.NET's
    /// `IQueryCollection` as the host reads it.
    pub(super) fn query_groups(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(self.raw_query().unwrap_or("").as_bytes()) {
            match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&k)) {
                Some((_, vs)) => vs.push(v.into_owned()),
                None => out.push((k.into_owned(), vec![v.into_owned()])),
            }
        }
        out.into_iter().map(|(k, vs)| (k, vs.join(","))).collect()
    }

    pub(super) fn has_content_length_body(&self) -> bool {
        !self.chunked && self.body.as_ref().is_some_and(|b| !b.is_empty())
    }
}

pub(super) fn enc(s: &str) -> String {
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
