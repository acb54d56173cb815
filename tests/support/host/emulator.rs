//! The host itself: readiness, the timer, the HTTP modes (G1-G7).

use super::*;

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
