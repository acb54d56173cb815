//! Service-layer, SMB and identity faults, as one table: each row a peer on loopback (a
//! storage or Key Vault contract stub from `support::stubs`, which names the document
//! each answer follows; a dead port; a listener that accepts and never answers; an HTTP
//! server on the SMB port), the target lines, the managed-identity endpoint the app has,
//! and what the report must say: the failing layer, the class (whose decisive words
//! `expect` checks), this case's own facts in the hint, and (through `probe`) that the
//! run ended by its deadline.

use super::*;
use support::identity::{IdentityEndpoint, down_url, jwt};
use support::stubs::{self, Canned};
use support::web;

const BLOB: &str = "acct1.blob.core.windows.net";
const VAULT: &str = "kv1.vault.azure.net";
const HEADER: &str = "idh-battery-services";

/// What answers at the target's address.
enum Peer {
    /// An HTTPS contract stub for `host`: its answer to the credential-free request and
    /// to the authorised read.
    Stub {
        host: &'static str,
        anonymous: fn() -> Canned,
        authorized: fn() -> Canned,
    },
    /// A loopback port nothing listens on.
    Refused,
    /// Accepts the connection, then never says a word.
    Silent,
    /// An HTTP server (support::web) where SMB was expected.
    Http,
}

/// The app's managed identity, as its settings show it.
enum Identity {
    None,
    /// The emulated endpoint, handing out a token for `resource`.
    Token(&'static str),
    /// IDENTITY_ENDPOINT set, nothing listening there.
    Down,
}

struct Case {
    name: &'static str,
    peer: Peer,
    extra: &'static str,
    identity: Identity,
    deadline: Option<Duration>,
    layer: Layer,
    class: FailureClass,
    /// This case's facts the hint must carry (beyond the class's decisive words).
    words: &'static [&'static str],
    /// The service layer's verdict, when one ran.
    verdict: Option<&'static str>,
}

fn kv_public() -> Canned {
    stubs::keyvault_firewall("198.51.100.20")
}

fn kv_private() -> Canned {
    stubs::keyvault_401("10.0.1.5")
}

const CASES: &[Case] = &[
    Case {
        name: "storage_firewall",
        peer: Peer::Stub {
            host: BLOB,
            anonymous: stubs::storage_firewall,
            authorized: stubs::storage_firewall,
        },
        extra: "",
        identity: Identity::None,
        deadline: None,
        layer: Layer::Service,
        class: FailureClass::ServiceFirewall,
        words: &[
            "(AuthorizationFailure)",
            "privatelink.blob.core.windows.net",
            BLOB,
        ],
        verdict: Some("firewall"),
    },
    Case {
        name: "storage_rbac_mismatch_on_the_identity_read",
        peer: Peer::Stub {
            host: BLOB,
            anonymous: stubs::storage_401,
            authorized: stubs::storage_rbac,
        },
        extra: "authentication = \"managed_identity\"",
        identity: Identity::Token("https://storage.azure.com"),
        deadline: None,
        layer: Layer::Service,
        class: FailureClass::ServiceRbac,
        words: &[
            "(AuthorizationPermissionMismatch)",
            "Storage Blob Data Reader",
            "system-assigned",
        ],
        verdict: Some("rbac"),
    },
    Case {
        name: "keyvault_firewall_with_a_public_witness",
        peer: Peer::Stub {
            host: VAULT,
            anonymous: kv_public,
            authorized: kv_public,
        },
        extra: "private = true",
        identity: Identity::None,
        deadline: None,
        layer: Layer::Service,
        class: FailureClass::ServicePublicPath,
        words: &["198.51.100.20", "privatelink.vaultcore.azure.net"],
        verdict: Some("firewall"),
    },
    Case {
        name: "proxy_403_page_in_front_of_storage",
        peer: Peer::Stub {
            host: BLOB,
            anonymous: stubs::proxy_403,
            authorized: stubs::proxy_403,
        },
        extra: "",
        identity: Identity::None,
        deadline: None,
        layer: Layer::Service,
        class: FailureClass::ServiceNotService,
        words: &["privatelink.blob.core.windows.net", BLOB],
        verdict: Some("not_the_service"),
    },
    Case {
        name: "token_endpoint_down",
        peer: Peer::Stub {
            host: VAULT,
            anonymous: kv_private,
            authorized: stubs::keyvault_list,
        },
        extra: "authentication = \"managed_identity\"",
        identity: Identity::Down,
        deadline: None,
        layer: Layer::Service,
        class: FailureClass::IdentityUnavailable,
        words: &["the system-assigned identity"],
        verdict: Some("reached_service"),
    },
    Case {
        name: "smb_refused",
        peer: Peer::Refused,
        extra: "",
        identity: Identity::None,
        deadline: None,
        layer: Layer::Tcp,
        class: FailureClass::SmbRefused,
        words: &[],
        verdict: None,
    },
    Case {
        name: "smb_blackholed_after_accept",
        peer: Peer::Silent,
        extra: "",
        identity: Identity::None,
        deadline: Some(Duration::from_millis(1500)),
        layer: Layer::Smb,
        class: FailureClass::SmbTimeout,
        words: &[],
        verdict: None,
    },
    Case {
        name: "not_smb_an_http_server_on_the_port",
        peer: Peer::Http,
        extra: "",
        identity: Identity::None,
        deadline: None,
        layer: Layer::Smb,
        class: FailureClass::SmbNotSmb,
        words: &["privatelink.file.core.windows.net"],
        verdict: None,
    },
];

async fn run_case(c: &Case) {
    certs::install_crypto_provider();
    let ca = Ca::new("battery services CA");
    let pem = PemFiles::write(&ca, &ca.issue(&LeafSpec::new(["localhost"])));
    // The peer lives (and its server task runs) until the case ends.
    let (port, _peer): (u16, Box<dyn std::any::Any>) = match &c.peer {
        Peer::Stub {
            host,
            anonymous,
            authorized,
        } => {
            let s = stubs::serve(&ca, &[host], anonymous(), authorized()).await;
            (s.addr.port(), Box::new(s))
        }
        Peer::Refused => (dead_port().port(), Box::new(())),
        Peer::Silent => {
            let s = web::silent().await;
            (s.addr.port(), Box::new(s))
        }
        Peer::Http => {
            let s = web::http().await;
            (s.addr.port(), Box::new(s))
        }
    };
    // A stub is an HTTPS service; every other peer stands where SMB is expected.
    let target = match &c.peer {
        Peer::Stub { host, .. } => format!("https://{host}:{port}/"),
        _ => format!("smb://127.0.0.1:{port}"),
    };
    let token = jwt("https://storage.azure.com", IID);
    let (idp, mut settings) = match c.identity {
        Identity::None => (None, Vec::new()),
        Identity::Token(resource) => {
            let idp = IdentityEndpoint::start(HEADER, &[(resource, &token)], &[]).await;
            let env = idp.env().to_vec();
            (Some(idp), env)
        }
        Identity::Down => (
            None,
            vec![
                ("IDENTITY_ENDPOINT", down_url()),
                ("IDENTITY_HEADER", HEADER.to_string()),
            ],
        ),
    };
    settings.push(("WEBSITE_PRIVATE_IP", "10.0.1.5".to_string()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = support::engine::env_of(&pairs);
    let dns = DnsServer::start(Zone::new().a(BLOB, "127.0.0.1", 0).a(VAULT, "127.0.0.1", 0)).await;
    let engine_extra = format!("ca_file = \"{}\"", pem.ca.display());
    let r = probe_with(
        dns.addr,
        &engine_extra,
        &one(&target, c.extra),
        c.deadline,
        &env,
    )
    .await;
    let t = expect(c.name, &r, c.layer, c.class);
    hint_has(c.name, t, c.words);
    let service = t.layers.iter().find(|l| l.layer == Layer::Service);
    match (c.verdict, service) {
        (Some(v), Some(l)) => {
            let j = serde_json::to_value(l).unwrap();
            assert_eq!(j["verdict"], v, "{}: {j}", c.name);
        }
        (None, None) => {}
        (want, got) => panic!("{}: verdict {want:?}, service layer {got:?}", c.name),
    }
    let shown = format!("{}\n{r:?}", serde_json::to_string(&r).unwrap());
    for secret in [HEADER, token.as_str()] {
        assert!(
            !shown.contains(secret),
            "{}: a secret leaked: {shown}",
            c.name
        );
    }
    drop(idp);
}

crate::cases!(
    storage_firewall,
    storage_rbac_mismatch_on_the_identity_read,
    keyvault_firewall_with_a_public_witness,
    proxy_403_page_in_front_of_storage,
    token_endpoint_down,
    smb_refused,
    smb_blackholed_after_accept,
    not_smb_an_http_server_on_the_port,
);
