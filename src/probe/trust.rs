//! The trust anchors TLS verifies against, read the way OpenSSL-based clients (psql,
//! curl, FreeTDS) read them: the bundle file up front (`SSL_CERT_FILE`, else the
//! distribution's bundle), and the certificate directory (`SSL_CERT_DIR`, else the
//! distribution's) only when a chain does not verify against the bundle (an unknown
//! issuer), as OpenSSL looks a directory up by hash only then.
//!
//! Reading the directory up front as well parsed every root a second time through ~150
//! hashed links: 3.5 ms of a one-shot TLS probe's 8 ms (docs/benchmarks.md, "Each
//! protocol next to its native client"). `update-ca-certificates` writes each root into
//! both, so on a Debian image (the Functions images) the bundle already holds them all.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, TrustAnchor};

/// The system bundle plus configured CA files, and how many system roots were usable.
/// Loaded once per engine: parsing ~150 roots per probe would dominate an HTTPS probe.
pub fn roots(extra: &[CertificateDer<'static>]) -> (RootCertStore, usize) {
    let mut store = RootCertStore::empty();
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or_else(|| openssl_probe::probe().cert_file);
    let native = system_certs(bundle.as_deref(), everything);
    let (added, _) = store.add_parsable_certificates(native);
    for c in extra {
        let _ = store.add(c.clone());
    }
    (store, added)
}

/// The bundle's roots when it has any; otherwise `all` (the directory, through
/// rustls-native-certs, which reads `SSL_CERT_FILE` and `SSL_CERT_DIR` or the
/// distribution's file and directory).
fn system_certs(
    bundle: Option<&Path>,
    all: impl FnOnce() -> Vec<CertificateDer<'static>>,
) -> Vec<CertificateDer<'static>> {
    if let Some(file) = bundle {
        let certs = rustls_native_certs::load_certs_from_paths(Some(file), None).certs;
        if !certs.is_empty() {
            return certs;
        }
    }
    all()
}

fn everything() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// A verifier over `roots` and every system root, the directory's included, for a chain
/// the bundle could not place; `None` when the directory adds nothing. The directory is
/// read and parsed once per process, on the first such chain, and the verifier is kept for
/// the last `roots` it was built over (an engine's shared store), so a run with many
/// untrusted chains does not re-parse ~150 roots for each.
pub fn widened(roots: &Arc<RootCertStore>) -> Option<Arc<WebPkiServerVerifier>> {
    static DIRECTORY: OnceLock<Vec<TrustAnchor<'static>>> = OnceLock::new();
    static LAST: Slot = Mutex::new(None);
    let directory = DIRECTORY.get_or_init(|| anchors(everything()));
    cached(&LAST, roots, || widen(roots, directory))
}

/// The verifier last built, and the store it was built over.
type Slot = Mutex<Option<(Weak<RootCertStore>, Option<Arc<WebPkiServerVerifier>>)>>;

/// `build`'s verifier for `roots`, built once while `roots` stays the store in `slot`.
fn cached(
    slot: &Slot,
    roots: &Arc<RootCertStore>,
    build: impl FnOnce() -> Option<Arc<WebPkiServerVerifier>>,
) -> Option<Arc<WebPkiServerVerifier>> {
    let mut last = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((kept, verifier)) = last.as_ref()
        && kept.upgrade().is_some_and(|k| Arc::ptr_eq(&k, roots))
    {
        return verifier.clone();
    }
    let verifier = build();
    *last = Some((Arc::downgrade(roots), verifier.clone()));
    verifier
}

/// The trust anchors among `certs` (those that parse).
fn anchors(certs: Vec<CertificateDer<'static>>) -> Vec<TrustAnchor<'static>> {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(certs);
    store.roots
}

fn widen(
    roots: &RootCertStore,
    directory: &[TrustAnchor<'static>],
) -> Option<Arc<WebPkiServerVerifier>> {
    if directory.is_empty() {
        return None;
    }
    let mut store = roots.clone();
    store.extend(directory.iter().cloned());
    WebPkiServerVerifier::builder(Arc::new(store)).build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(cn: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Distinct subjects: rcgen's default one is shared by every certificate.
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        rcgen::CertifiedIssuer::self_signed(params, key).unwrap()
    }

    #[test]
    fn the_bundle_alone_when_it_has_roots() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, ca("bundle.test").pem()).unwrap();
        let marker = || vec![CertificateDer::from(vec![1u8, 2, 3])];
        // A bundle with a root: only it; the directory reader is never called.
        let got = system_certs(Some(&bundle), || panic!("directory read"));
        assert_eq!(got.len(), 1);
        assert_ne!(got[0].as_ref(), [1u8, 2, 3]);
        // No bundle, an empty one, or one that is missing: the full reader.
        assert_eq!(system_certs(None, marker)[0].as_ref(), [1, 2, 3]);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(system_certs(Some(&empty), marker)[0].as_ref(), [1, 2, 3]);
        let missing = dir.path().join("missing.pem");
        assert_eq!(system_certs(Some(&missing), marker)[0].as_ref(), [1, 2, 3]);
    }

    #[test]
    fn a_root_only_in_the_directory_still_verifies() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};
        // The server's chain leads to a CA that is not in the bundle's store.
        let dir_ca = ca("directory-only CA");
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["svc.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &dir_ca)
            .unwrap();
        let mut bundle = RootCertStore::empty();
        bundle.add(ca("bundle CA").der().clone()).unwrap();
        let name = ServerName::try_from("svc.test").unwrap();
        let verify = |v: &WebPkiServerVerifier| {
            v.verify_server_cert(leaf.der(), &[], &name, &[], UnixTime::now())
        };
        let narrow = WebPkiServerVerifier::builder(Arc::new(bundle.clone()))
            .build()
            .unwrap();
        let narrow_res = verify(&narrow);
        assert!(
            matches!(
                narrow_res,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{narrow_res:?}"
        );
        let directory = anchors(vec![dir_ca.der().clone()]);
        let wide = widen(&bundle, &directory).expect("the directory adds a root");
        assert!(verify(&wide).is_ok());
        // A directory with nothing usable widens nothing.
        assert!(widen(&bundle, &[]).is_none());
        assert!(widen(&bundle, &anchors(vec![CertificateDer::from(vec![0u8; 4])])).is_none());
    }

    #[test]
    fn the_widened_verifier_is_built_once_per_store() {
        let slot: Slot = Mutex::new(None);
        let builds = std::cell::Cell::new(0);
        let build = || {
            builds.set(builds.get() + 1);
            let mut store = RootCertStore::empty();
            store.add(ca("directory CA").der().clone()).unwrap();
            WebPkiServerVerifier::builder(Arc::new(store)).build().ok()
        };
        let engine = Arc::new(RootCertStore::empty());
        let first = cached(&slot, &engine, build).expect("built");
        let again = cached(&slot, &engine, build).expect("kept");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(builds.get(), 1);
        // Another store (a target's own ca_file) gets its own verifier.
        let target = Arc::new(RootCertStore::empty());
        let other = cached(&slot, &target, build).expect("built for the target");
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(builds.get(), 2);
        // A store that is gone never matches the next one, and the engine's store, which
        // the slot no longer holds, is built for again.
        drop(target);
        let fresh = Arc::new(RootCertStore::empty());
        cached(&slot, &fresh, build);
        cached(&slot, &fresh, build);
        assert_eq!(builds.get(), 3);
        cached(&slot, &engine, build);
        assert_eq!(builds.get(), 4);
        // "The directory adds nothing" is kept too.
        let nothing = Arc::new(RootCertStore::empty());
        assert!(cached(&slot, &nothing, || None).is_none());
        assert!(cached(&slot, &nothing, || panic!("rebuilt")).is_none());
    }
}
