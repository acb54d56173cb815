//! TCP faults: refused, blackholed (before and past the run deadline), reset or closed
//! right after accept, and a socket the platform refuses (seccomp, one thread).

use super::*;

#[tokio::test]
async fn tcp_refused() {
    let addr = dead_port();
    let r = probe(nodns(), "", &one(&format!("tcp://{addr}"), ""), None).await;
    let t = expect("tcp_refused", &r, Layer::Tcp, FailureClass::TcpRefused);
    assert_eq!(t.reached, None);
    // The hint names the port nothing listens on.
    hint_has(
        "tcp_refused",
        t,
        &[&format!("nothing accepts port {} there", addr.port())],
    );
}

#[tokio::test]
async fn tcp_blackholed() {
    let (addr, _keep, _held) = support::net::blackholed().await;
    let r = probe(nodns(), "", &one(&format!("tcp://{addr}"), ""), None).await;
    let t = expect("tcp_blackholed", &r, Layer::Tcp, FailureClass::TcpTimeout);
    // NSG and route table are the causes; a loopback address is not public, so the
    // route-all remark for public addresses must not appear.
    hint_has(
        "tcp_blackholed",
        t,
        &["integration or endpoint subnet", "(UDR)"],
    );
    hint_lacks("tcp_blackholed", t, &["vnetRouteAllEnabled"]);
}

#[tokio::test]
async fn tcp_blackholed_past_the_run_deadline() {
    let (addr, _keep, _held) = support::net::blackholed().await;
    let r = probe(
        nodns(),
        "",
        &one(&format!("tcp://{addr}"), ""),
        Some(Duration::from_millis(200)),
    )
    .await;
    let t = expect(
        "tcp_blackholed_past_the_run_deadline",
        &r,
        Layer::Tcp,
        FailureClass::Deadline,
    );
    hint_lacks(
        "tcp_blackholed_past_the_run_deadline",
        t,
        &["SYN unanswered"],
    );
}

#[tokio::test]
async fn tcp_reset_after_accept() {
    let addr = accept_then(true).await;
    let r = probe(
        nodns(),
        "tcp_settle = \"300ms\"",
        &one(&format!("tcp://{addr}"), ""),
        None,
    )
    .await;
    let t = expect(
        "tcp_reset_after_accept",
        &r,
        Layer::Tcp,
        FailureClass::TcpReset,
    );
    hint_has(
        "tcp_reset_after_accept",
        t,
        &["TLS inspection", "unhealthy service"],
    );
}

#[tokio::test]
async fn tcp_closed_after_accept() {
    let addr = accept_then(false).await;
    let r = probe(
        nodns(),
        "tcp_settle = \"300ms\"",
        &one(&format!("tcp://{addr}"), ""),
        None,
    )
    .await;
    let t = expect(
        "tcp_closed_after_accept",
        &r,
        Layer::Tcp,
        FailureClass::TcpReset,
    );
    hint_has(
        "tcp_closed_after_accept",
        t,
        &["TLS inspection", "unhealthy service"],
    );
}

#[cfg(target_arch = "x86_64")]
#[tokio::test]
async fn tcp_eacces_from_the_platform() {
    count_panics();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            if !support::net::deny_connect_on_this_thread(libc::EACCES) {
                return None;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            Some(rt.block_on(probe(nodns(), "", &one(&format!("tcp://{addr}"), ""), None)))
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap();
    let Some(r) = out else {
        support::skip("tcp_eacces_from_the_platform", "seccomp not available");
        return;
    };
    let t = expect(
        "tcp_eacces_from_the_platform",
        &r,
        Layer::Tcp,
        FailureClass::TcpForbidden,
    );
    hint_has("tcp_eacces_from_the_platform", t, &["IPv6"]);
}
