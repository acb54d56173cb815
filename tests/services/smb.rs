//! SMB2 NEGOTIATE against a real smbd on a free loopback port; a refused port, a
//! non-SMB listener, a listener that closes, and a blackholed listener (deadline honoured).

use std::net::SocketAddr;
use std::time::Duration;

use routeproof::probe::smb::{self, SmbError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{deadline, peers};

/// The outer guard: if the probe ever ignored its deadline, this fails instead of hanging.
const GUARD: Duration = Duration::from_secs(20);

async fn probe(addr: SocketAddr, secs: u64) -> Result<smb::Negotiated, SmbError> {
    tokio::time::timeout(GUARD, smb::probe(addr, deadline(secs)))
        .await
        .expect("the probe returned by its deadline")
}

#[tokio::test]
async fn samba_answers_negotiate() {
    let samba = match peers::samba() {
        Ok(s) => s,
        Err(e) => return peers::skip("samba negotiate", &e),
    };
    let t0 = std::time::Instant::now();
    let n = probe(SocketAddr::from(([127, 0, 0, 1], samba.port)), 10)
        .await
        .expect("an SMB2 server");
    eprintln!(
        "timing: smb negotiate (connect + NEGOTIATE) {:?}",
        t0.elapsed()
    );
    assert_eq!(n.dialect, "3.1.1", "{n:?}");
    assert!(n.signing_enabled, "{n:?}");
    assert_eq!(n.server_guid.len(), 32);
    assert!(n.max_read_size > 0);
    assert!(n.cipher.is_some(), "3.1.1 negotiates a cipher: {n:?}");
    let json = serde_json::to_value(&n).unwrap();
    assert_eq!(json["dialect"], "3.1.1");
}

#[tokio::test]
async fn refused_port_is_smb_refused() {
    let port = peers::free_port();
    let err = probe(SocketAddr::from(([127, 0, 0, 1], port)), 5)
        .await
        .unwrap_err();
    assert_eq!(err.class(), "smb.refused", "{err}");
    let h = err.hint();
    assert!(
        h.contains("445") && h.contains("NSG") && h.contains("privatelink.file.core.windows.net"),
        "{h}"
    );
}

async fn listener(
    answer: Option<&'static [u8]>,
    close: bool,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            if let Some(a) = answer {
                let _ = s.write_all(a).await;
            }
            if close {
                drop(s);
            } else {
                held.push(s);
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_non_smb_listener_is_not_smb() {
    let (addr, task) = listener(
        Some(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        true,
    )
    .await;
    let err = probe(addr, 5).await.unwrap_err();
    assert!(matches!(err, SmbError::NotSmb { .. }), "{err:?}");
    assert_eq!(err.class(), "smb.not_smb");
    assert!(err.hint().contains("privatelink.file.core.windows.net"));
    task.abort();
}

#[tokio::test]
async fn a_listener_that_closes_is_closed() {
    let (addr, task) = listener(None, true).await;
    let err = probe(addr, 5).await.unwrap_err();
    assert_eq!(err.class(), "smb.closed", "{err:?}");
    task.abort();
}

#[tokio::test]
async fn a_blackholed_listener_honours_the_deadline() {
    let (addr, task) = listener(None, false).await;
    let err = probe(addr, 1).await.unwrap_err();
    assert_eq!(err, SmbError::Timeout { phase: "answer" });
    assert_eq!(err.class(), "smb.timeout");
    let h = err.hint();
    assert!(
        h.contains("vnetContentShareEnabled") && h.contains("NSG"),
        "{h}"
    );
    task.abort();
}
