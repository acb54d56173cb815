//! Certificates for the TLS peers our tests start (TDS, HTTPS, anything with rustls).
//!
//! Everything is generated per test with rcgen: a private CA, leaves it signs for
//! chosen DNS names and IP addresses, with a chosen validity window (current,
//! expired, not yet valid), and self-signed leaves. Independent clients (FreeTDS,
//! OpenSSL-based Python drivers, curl) only take a CA as a file, so [`PemFiles`]
//! writes the PEMs to a temporary directory that lives as long as the value.
//!
//! Keys are ECDSA P-256 from aws-lc (rcgen's `KeyPair::generate`): every client we
//! drive accepts them, and generating them takes microseconds, not RSA's seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::SupportedProtocolVersion;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Installs aws-lc-rs as rustls' process-wide provider. Several test helpers may
/// race to do this in one binary, so "already installed" is not an error.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The validity window of a generated certificate, relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From an hour ago to thirty days ahead: clock skew between processes is no issue.
    Current,
    /// Ended yesterday (started thirty days ago).
    Expired,
    /// Starts tomorrow.
    NotYetValid,
    /// An explicit window.
    Window {
        not_before: SystemTime,
        not_after: SystemTime,
    },
}

impl Validity {
    fn window(self) -> (SystemTime, SystemTime) {
        let now = SystemTime::now();
        match self {
            Validity::Current => (now - HOUR, now + 30 * DAY),
            Validity::Expired => (now - 30 * DAY, now - DAY),
            Validity::NotYetValid => (now + DAY, now + 30 * DAY),
            Validity::Window {
                not_before,
                not_after,
            } => (not_before, not_after),
        }
    }
}

/// What a leaf certificate says: its subject CN, its SANs and its validity.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Subject common name. Some clients (python-tds) match the host name against the
    /// CN and DNS SANs only, never IP SANs, so a test dialling an IP may need the IP here.
    pub common_name: String,
    /// Subject alternative names: an entry that parses as an IP address becomes an IP
    /// SAN, anything else a DNS SAN (wildcards like `*.database.windows.net` allowed).
    pub names: Vec<String>,
    pub validity: Validity,
}

impl LeafSpec {
    /// A currently valid server certificate for `names`; the CN is the first name.
    pub fn new<I, S>(names: I) -> LeafSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        LeafSpec {
            common_name: names
                .first()
                .cloned()
                .unwrap_or_else(|| "routeproof test".into()),
            names,
            validity: Validity::Current,
        }
    }

    pub fn common_name(mut self, cn: impl Into<String>) -> LeafSpec {
        self.common_name = cn.into();
        self
    }

    pub fn validity(mut self, validity: Validity) -> LeafSpec {
        self.validity = validity;
        self
    }

    fn params(&self) -> CertificateParams {
        let mut params = CertificateParams::new(self.names.clone()).expect("valid SAN names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.common_name.as_str());
        set_validity(&mut params, self.validity);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params
    }
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let (not_before, not_after) = validity.window();
    // rcgen wants `time::OffsetDateTime`; the epoch plus a std Duration gets there
    // without making `time` a dependency of the tests.
    let since_epoch = |t: SystemTime| t.duration_since(UNIX_EPOCH).expect("after 1970");
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(not_before);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(not_after);
}

/// A private certificate authority: the trust anchor handed to clients.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(common_name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let (nb, _) = Validity::Current.window();
        set_validity(
            &mut params,
            Validity::Window {
                not_before: nb - DAY,
                not_after: nb + 365 * DAY,
            },
        );
        let key = KeyPair::generate().expect("generate CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign CA");
        Ca { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf signed by this CA. The chain holds the leaf only, as servers that
    /// chain straight to a root send it.
    pub fn issue(&self, spec: &LeafSpec) -> Material {
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = spec
            .params()
            .signed_by(&key, &self.issuer)
            .expect("sign leaf");
        Material::new(cert, key)
    }

    /// Trust anchors for a Rust-side client.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der()).expect("CA certificate parses");
        roots
    }

    /// A rustls client that trusts only this CA, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// A self-signed leaf: what a server presents when nobody provisioned a real
/// certificate (SQL Server's own fallback), so clients that validate must refuse it.
pub fn self_signed(spec: &LeafSpec) -> Material {
    let key = KeyPair::generate().expect("generate key");
    let cert = spec.params().self_signed(&key).expect("self-sign");
    Material::new(cert, key)
}

/// A server's certificate chain and private key, in the forms rustls and external
/// programs want.
#[derive(Debug)]
pub struct Material {
    pub chain: Vec<CertificateDer<'static>>,
    pub cert_pem: String,
    pub key_pem: String,
    key_der: PrivatePkcs8KeyDer<'static>,
}

impl Clone for Material {
    fn clone(&self) -> Material {
        Material {
            chain: self.chain.clone(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            key_der: self.key_der.clone_key(),
        }
    }
}

impl Material {
    fn new(cert: rcgen::Certificate, key: KeyPair) -> Material {
        Material {
            chain: vec![cert.der().clone()],
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }

    /// The chain and key as rustls' `CertifiedKey`, for servers that pick a
    /// certificate per connection (SNI resolvers).
    pub fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        Arc::new(
            rustls::sign::CertifiedKey::from_der(self.chain.clone(), self.key(), &provider)
                .expect("key matches certificate"),
        )
    }

    /// A rustls server presenting this certificate, limited to `versions` (all of
    /// rustls' defaults when empty) and offering `alpn` protocols.
    pub fn server_config(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider);
        let builder = if versions.is_empty() {
            builder.with_safe_default_protocol_versions()
        } else {
            builder.with_protocol_versions(versions)
        }
        .expect("protocol versions supported by aws-lc-rs");
        let mut config = builder
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key())
            .expect("key matches certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// PEM files on disk for clients configured by path. The directory is removed when
/// this value drops, so keep it alive for as long as the client runs.
pub struct PemFiles {
    dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl PemFiles {
    pub fn write(ca: &Ca, leaf: &Material) -> PemFiles {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).expect("write PEM");
            path
        };
        let ca = write("ca.pem", &ca.pem());
        let cert = write("server.pem", &leaf.cert_pem);
        let key = write("server.key", &leaf.key_pem);
        PemFiles { dir, ca, cert, key }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
