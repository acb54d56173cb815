//! An in-process DNS server whose every answer the test decides.
//!
//! It is a real server (hickory-server's UDP and TCP plumbing, real wire
//! format), so the prober under test talks to it exactly as it would talk to
//! Azure DNS. It binds only 127.0.0.1 and never forwards or recurses: a name
//! that is not in the [`Zone`] gets NXDOMAIN, so a test can never leak a
//! lookup off the machine.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, SRV, TXT};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;

/// Real resolvers give up well before this; more hops means a broken zone.
const MAX_CNAME_HOPS: usize = 8;
/// Short enough that negative answers never outlive a test run in a cache.
const SOA_TTL: u32 = 60;
/// Long enough for a slow test to reuse one connection, short enough that a
/// forgotten client does not pin a task for the rest of the run.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do instead of (or before) answering a name; lets tests provoke
/// each failure mode a real upstream resolver can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    ServFail,
    Refused,
    Drop,
}

/// In-memory records plus per-name misbehaviour.
///
/// Keys are lower-case FQDNs with the trailing dot, because DNS names compare
/// case-insensitively and tests should not care how they spelled a name.
/// Faults, delays and truncation apply to the name as queried, not to names
/// reached through a CNAME.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    records: HashMap<String, Vec<Record>>,
    faults: HashMap<String, Fault>,
    delays: HashMap<String, Duration>,
    truncated: HashSet<String>,
}

impl Zone {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn a(self, name: &str, ip: &str, ttl: u32) -> Self {
        let ip: Ipv4Addr = ip
            .parse()
            .unwrap_or_else(|e| panic!("bad IPv4 {ip:?}: {e}"));
        self.record(name, ttl, RData::A(A(ip)))
    }

    pub fn aaaa(self, name: &str, ip: &str, ttl: u32) -> Self {
        let ip: Ipv6Addr = ip
            .parse()
            .unwrap_or_else(|e| panic!("bad IPv6 {ip:?}: {e}"));
        self.record(name, ttl, RData::AAAA(AAAA(ip)))
    }

    /// A name with a CNAME must carry nothing else (RFC 1034 §3.6.2), so
    /// mixing them is refused here instead of producing answers no real
    /// server would give.
    pub fn cname(self, name: &str, target: &str, ttl: u32) -> Self {
        self.record(name, ttl, RData::CNAME(CNAME(fqdn(target))))
    }

    pub fn txt(self, name: &str, text: &str, ttl: u32) -> Self {
        self.record(name, ttl, RData::TXT(TXT::new(vec![text.to_owned()])))
    }

    pub fn mx(self, name: &str, pref: u16, exchange: &str, ttl: u32) -> Self {
        self.record(name, ttl, RData::MX(MX::new(pref, fqdn(exchange))))
    }

    pub fn srv(
        self,
        name: &str,
        prio: u16,
        weight: u16,
        port: u16,
        target: &str,
        ttl: u32,
    ) -> Self {
        let srv = SRV::new(prio, weight, port, fqdn(target));
        self.record(name, ttl, RData::SRV(srv))
    }

    /// Models an upstream whose own recursion failed (any query type).
    pub fn servfail(mut self, name: &str) -> Self {
        self.faults.insert(key(name), Fault::ServFail);
        self
    }

    /// Models a resolver that will not serve this client (any query type).
    pub fn refused(mut self, name: &str) -> Self {
        self.faults.insert(key(name), Fault::Refused);
        self
    }

    /// Models a slow upstream; other queries are served meanwhile.
    pub fn delay(mut self, name: &str, d: Duration) -> Self {
        self.delays.insert(key(name), d);
        self
    }

    /// Models a firewall eating the packets: the query is counted but never
    /// answered, so the client has to hit its own timeout.
    pub fn drop_queries(mut self, name: &str) -> Self {
        self.faults.insert(key(name), Fault::Drop);
        self
    }

    /// Forces the client's UDP-then-TCP fallback (TC bit, no records over
    /// UDP; the full answer over TCP), which is how large answers behave.
    pub fn truncate_udp(mut self, name: &str) -> Self {
        self.truncated.insert(key(name));
        self
    }

    /// Azure Private Link shaped fixture under database.windows.net:
    ///  myserver.database.windows.net CNAME myserver.privatelink.database.windows.net, A 10.1.2.4
    ///  loopsql.database.windows.net CNAME loopsql.privatelink.database.windows.net, A 127.0.0.1 (+ AAAA ::1)
    ///  publicsql.database.windows.net CNAME publicsql.privatelink.database.windows.net CNAME publicsql.cloudapp.net A 20.0.0.5 (public answer with a privatelink hop)
    ///  local.database.windows.net A 127.0.0.10 ; loop1.database.windows.net CNAME loop2... CNAME loop1... (CNAME loop)
    ///  empty.database.windows.net exists (has a TXT) but no A (NOERROR/no records for A)
    ///  x.servfail.test SERVFAIL, x.refused.test REFUSED ; anything else unknown -> NXDOMAIN with an SOA in authority
    ///
    /// One shared fixture keeps every test's idea of "the private endpoint"
    /// identical to the unbound peer's zone file.
    pub fn privatelink_fixture() -> Self {
        const TTL: u32 = 60;
        Zone::new()
            .cname(
                "myserver.database.windows.net",
                "myserver.privatelink.database.windows.net",
                TTL,
            )
            .a("myserver.privatelink.database.windows.net", "10.1.2.4", TTL)
            .cname(
                "loopsql.database.windows.net",
                "loopsql.privatelink.database.windows.net",
                TTL,
            )
            .a("loopsql.privatelink.database.windows.net", "127.0.0.1", TTL)
            .aaaa("loopsql.privatelink.database.windows.net", "::1", TTL)
            .cname(
                "publicsql.database.windows.net",
                "publicsql.privatelink.database.windows.net",
                TTL,
            )
            .cname(
                "publicsql.privatelink.database.windows.net",
                "publicsql.cloudapp.net",
                TTL,
            )
            .a("publicsql.cloudapp.net", "20.0.0.5", TTL)
            .a("local.database.windows.net", "127.0.0.10", TTL)
            .cname(
                "loop1.database.windows.net",
                "loop2.database.windows.net",
                TTL,
            )
            .cname(
                "loop2.database.windows.net",
                "loop1.database.windows.net",
                TTL,
            )
            .txt("empty.database.windows.net", "exists-but-no-address", TTL)
            .servfail("x.servfail.test")
            .refused("x.refused.test")
    }

    fn record(mut self, name: &str, ttl: u32, rdata: RData) -> Self {
        let k = key(name);
        let is_cname = matches!(rdata, RData::CNAME(_));
        let existing = self.records.entry(k.clone()).or_default();
        let has_cname = existing
            .iter()
            .any(|r| r.record_type() == RecordType::CNAME);
        assert!(
            existing.is_empty() || !(is_cname || has_cname),
            "{k}: a CNAME cannot coexist with other records"
        );
        existing.push(Record::from_rdata(fqdn(&k), ttl, rdata));
        self
    }

    fn cname_at(&self, name: &str) -> Option<&Record> {
        self.records
            .get(name)?
            .iter()
            .find(|r| r.record_type() == RecordType::CNAME)
    }

    /// Empty non-terminals (e.g. `privatelink.database.windows.net`) exist
    /// too; a real server says NOERROR/no data for them, not NXDOMAIN.
    fn exists(&self, name: &str) -> bool {
        let suffix = format!(".{name}");
        self.records.contains_key(name) || self.records.keys().any(|k| k.ends_with(&suffix))
    }

    /// Authoritative-server answer logic: chase CNAMEs inside the zone, then
    /// take the wanted type at the end of the chain.
    fn resolve(&self, qname: &str, qtype: RecordType) -> Resolution {
        let mut answers = Vec::new();
        let mut current = qname.to_owned();
        if qtype != RecordType::CNAME && qtype != RecordType::ANY {
            let mut seen = HashSet::from([current.clone()]);
            for _ in 0..MAX_CNAME_HOPS {
                let Some(record) = self.cname_at(&current) else {
                    break;
                };
                answers.push(record.clone());
                let RData::CNAME(CNAME(target)) = &record.data else {
                    unreachable!("cname_at returns CNAME records only");
                };
                current = key(&target.to_string());
                if !seen.insert(current.clone()) {
                    // A loop: hand back what we followed and let the client
                    // notice there is no address at the end.
                    return Resolution::noerror(answers, None);
                }
            }
            if self.cname_at(&current).is_some() {
                return Resolution::noerror(answers, None);
            }
        }
        let matching: Vec<Record> = self
            .records
            .get(&current)
            .into_iter()
            .flatten()
            .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
            .cloned()
            .collect();
        if !matching.is_empty() {
            answers.extend(matching);
            Resolution::noerror(answers, None)
        } else if self.exists(&current) {
            Resolution::noerror(answers, Some(soa_for(&current)))
        } else {
            Resolution {
                code: ResponseCode::NXDomain,
                answers,
                soa: Some(soa_for(&current)),
            }
        }
    }
}

struct Resolution {
    code: ResponseCode,
    answers: Vec<Record>,
    soa: Option<Record>,
}

impl Resolution {
    fn noerror(answers: Vec<Record>, soa: Option<Record>) -> Self {
        Self {
            code: ResponseCode::NoError,
            answers,
            soa,
        }
    }
}

/// The map key: lower-case with exactly one trailing dot.
fn key(name: &str) -> String {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    format!("{lower}.")
}

fn fqdn(name: &str) -> Name {
    let k = key(name);
    Name::from_ascii(&k).unwrap_or_else(|e| panic!("bad DNS name {name:?}: {e}"))
}

/// Negative answers need an SOA so resolvers can cache them (RFC 2308); the
/// apex is simply the last two labels, which is all a stub client looks at.
fn soa_for(name: &str) -> Record {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    let apex = labels[labels.len().saturating_sub(2)..].join(".");
    let soa = SOA::new(
        fqdn(&format!("ns1.{apex}")),
        fqdn(&format!("hostmaster.{apex}")),
        1,
        3600,
        600,
        86400,
        SOA_TTL,
    );
    Record::from_rdata(fqdn(&apex), SOA_TTL, RData::SOA(soa))
}

struct Handler {
    zone: Arc<Zone>,
    queries: Arc<AtomicUsize>,
}

impl Handler {
    async fn answer<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::SeqCst);

        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = true;

        // RFC 6891: a request with OPT gets an OPT back.
        let edns = request.edns.as_ref().map(|req| {
            let mut resp = Edns::new();
            resp.set_max_payload(req.max_payload().max(512));
            resp.set_version(0);
            resp
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());

        if request.metadata.op_code != OpCode::Query {
            meta.response_code = ResponseCode::NotImp;
            return send(&mut handle, builder.build_no_records(meta)).await;
        }
        let Ok(info) = request.request_info() else {
            meta.response_code = ResponseCode::FormErr;
            return send(&mut handle, builder.build_no_records(meta)).await;
        };
        let qname = key(&info.query.name().to_string());
        let qtype = info.query.query_type();

        if self.zone.faults.get(&qname) == Some(&Fault::Drop) {
            return ResponseInfo::from(Header {
                metadata: meta,
                counts: HeaderCounts::default(),
            });
        }
        if let Some(d) = self.zone.delays.get(&qname) {
            tokio::time::sleep(*d).await;
        }
        match self.zone.faults.get(&qname) {
            Some(Fault::ServFail) => {
                meta.response_code = ResponseCode::ServFail;
                return send(&mut handle, builder.build_no_records(meta)).await;
            }
            Some(Fault::Refused) => {
                meta.response_code = ResponseCode::Refused;
                return send(&mut handle, builder.build_no_records(meta)).await;
            }
            Some(Fault::Drop) | None => {}
        }
        if info.query.query_class() != DNSClass::IN {
            meta.response_code = ResponseCode::Refused;
            return send(&mut handle, builder.build_no_records(meta)).await;
        }

        meta.authoritative = true;
        if request.protocol() == Protocol::Udp && self.zone.truncated.contains(&qname) {
            meta.truncation = true;
            return send(&mut handle, builder.build_no_records(meta)).await;
        }

        let res = self.zone.resolve(&qname, qtype);
        meta.response_code = res.code;
        let response = builder.build(
            meta,
            res.answers.iter(),
            std::iter::empty(),
            res.soa.iter(),
            std::iter::empty(),
        );
        send(&mut handle, response).await
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    let mut fallback = *response.metadata();
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => {
            fallback.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata: fallback,
                counts: HeaderCounts::default(),
            })
        }
    }
}

// Written out by hand because `async-trait` (which generates this shape for
// the trait) is not one of our dependencies.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.answer(request, response_handle))
    }
}

/// A running server; dropping it stops every task it spawned.
pub struct DnsServer {
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    server: Server<Handler>,
}

impl DnsServer {
    /// UDP and TCP share one port, as on a real resolver, so a client's TCP
    /// fallback after a truncated UDP answer reaches the same server.
    pub async fn start(zone: Zone) -> DnsServer {
        let (udp, tcp) = bind_udp_and_tcp().await;
        let addr = udp.local_addr().expect("udp local_addr");
        let queries = Arc::new(AtomicUsize::new(0));
        let mut server = Server::new(Handler {
            zone: Arc::new(zone),
            queries: Arc::clone(&queries),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, 32);
        DnsServer {
            addr,
            queries,
            server,
        }
    }

    /// Every query that reached the handler, including dropped ones; lets a
    /// test prove e.g. that a cached answer caused no second lookup.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Cancelling makes the accept loops stop; dropping `server` right
        // after aborts its JoinSet, which also ends in-flight request tasks.
        self.server.shutdown_token().cancel();
    }
}

async fn bind_udp_and_tcp() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    let mut last_err = None;
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind UDP 127.0.0.1:0");
        let port = udp.local_addr().expect("udp local_addr").port();
        match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return (udp, tcp),
            Err(e) => last_err = Some(e),
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1: {last_err:?}");
}
