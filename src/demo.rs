//! `routeproof demo`: the whole engine on an embedded default, offline. It starts a DNS
//! server shaped like Azure Private DNS (a public name CNAMEd to a `privatelink` name)
//! and TCP peers, all on 127.0.0.1, then probes them through every layer this build has,
//! so a new user sees real evidence and real classified failures in one command.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, CNAME};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::{TcpListener, UdpSocket};

/// Loopback peers for the demo; dropping it stops them.
pub struct DemoPeers {
    pub dns: SocketAddr,
    pub open: SocketAddr,
    pub closed: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DemoPeers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The demo zone: `(name, answer)`; CNAMEs are followed inside the zone.
fn zone() -> HashMap<&'static str, RData> {
    let mut z = HashMap::new();
    let name = |s: &str| Name::from_str(s).expect("static name");
    z.insert(
        "loopsql.database.windows.net.",
        RData::CNAME(CNAME(name("loopsql.privatelink.database.windows.net."))),
    );
    z.insert(
        "loopsql.privatelink.database.windows.net.",
        RData::A(A(Ipv4Addr::LOCALHOST)),
    );
    z.insert(
        "publicsql.database.windows.net.",
        RData::CNAME(CNAME(name("publicsql.privatelink.database.windows.net."))),
    );
    z.insert(
        "publicsql.privatelink.database.windows.net.",
        RData::CNAME(CNAME(name(
            "cr1.westeurope1-a.control.database.windows.net.",
        ))),
    );
    // Documentation address (RFC 5737): shown as data, never connected to.
    z.insert(
        "cr1.westeurope1-a.control.database.windows.net.",
        RData::A(A(Ipv4Addr::new(192, 0, 2, 10))),
    );
    z.insert(
        "api.internal.contoso.com.",
        RData::A(A(Ipv4Addr::new(127, 0, 0, 1))),
    );
    z
}

fn answer(query: &Message) -> Message {
    let mut resp = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.metadata.authoritative = true;
    let Some(q) = query.queries.first() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp;
    };
    resp.add_query(q.clone());
    let z = zone();
    let mut name = q.name().to_string().to_ascii_lowercase();
    let mut found = false;
    for _ in 0..8 {
        let Some(rdata) = z.get(name.as_str()) else {
            break;
        };
        found = true;
        let owner = Name::from_str(&name).expect("zone name");
        match rdata {
            RData::CNAME(c) => {
                resp.add_answer(Record::from_rdata(owner, 60, rdata.clone()));
                name = c.0.to_string().to_ascii_lowercase();
            }
            other => {
                if q.query_type() == RecordType::A {
                    resp.add_answer(Record::from_rdata(owner, 60, other.clone()));
                }
                break;
            }
        }
    }
    if !found || !z.contains_key(name.as_str()) {
        resp.metadata.response_code = ResponseCode::NXDomain;
    }
    resp
}

impl DemoPeers {
    pub async fn start() -> std::io::Result<DemoPeers> {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let udp = UdpSocket::bind((lo, 0)).await?;
        let dns = udp.local_addr()?;
        let dns_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Ok(bytes) = answer(&q).to_vec() {
                    let _ = udp.send_to(&bytes, peer).await;
                }
            }
        });
        let listener = TcpListener::bind((lo, 0)).await?;
        let open = listener.local_addr()?;
        let accept_task = tokio::spawn(async move {
            // Hold each connection briefly so the TCP layer's settle check sees a live peer.
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    drop(s);
                });
            }
        });
        // Bind then drop: nothing listens on this port afterwards, so connects are refused.
        let closed = TcpListener::bind((lo, 0)).await?.local_addr()?;
        Ok(DemoPeers {
            dns,
            open,
            closed,
            tasks: vec![dns_task, accept_task],
        })
    }

    /// The embedded default config, pointed at these peers.
    pub fn config_toml(&self) -> String {
        format!(
            r#"# routeproof demo: every peer below runs inside this process on 127.0.0.1.
[engine]
dns_servers = ["{dns}"]
deadline = "10s"
[engine.timeouts]
dns = "1s"
tcp = "1s"

[[targets]]
name = "sql-private-endpoint"
target = "tcp://loopsql.database.windows.net:{open_port}"
private = true

[[targets]]
name = "sql-zone-not-linked"
target = "dns://publicsql.database.windows.net"
private = true

[[targets]]
name = "internal-api-down"
target = "tcp://api.internal.contoso.com:{closed_port}"

[[targets]]
name = "typo-in-name"
target = "tcp://lopsql.database.windows.net:1433"
"#,
            dns = self.dns,
            open_port = self.open.port(),
            closed_port = self.closed.port(),
        )
    }
}
