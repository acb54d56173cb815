//! Network fault helpers shared by the TCP tests and the fault battery.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A listener that never accepts and whose accept queue is already full: the kernel
/// drops further SYNs, which is exactly what an NSG drop looks like to the client.
pub async fn blackholed() -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap();
    let listener = sock.listen(0).unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the backlog: {e}"),
            Err(_) => return (addr, listener, held),
        }
    }
    panic!("the accept queue never filled");
}

/// Makes `connect()` fail with `errno` on the calling thread only: what App Service's
/// sandbox does to sockets VNet integration does not allow (e.g. IPv6). A netfilter drop
/// is not the same thing: for TCP it only delays the SYN until a timeout.
#[cfg(target_arch = "x86_64")]
pub fn deny_connect_on_this_thread(errno: i32) -> bool {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }, // seccomp_data.nr
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_connect as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ERRNO | (errno as u32 & 0xffff),
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: plain prctl calls with a filter that outlives them; without TSYNC the filter
    // binds only this thread (and threads it spawns).
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const _,
            ) == 0
    }
}

/// A UDP socket on 127.0.0.1:0 that reads nothing and never answers (a "silent" DNS server). Keep the guard alive.
///
/// Unlike a closed port (which can produce ICMP "port unreachable" and a
/// fast failure), this makes the client wait out its full timeout.
pub struct SilentDns {
    pub addr: SocketAddr,
    _sock: std::net::UdpSocket,
}

impl SilentDns {
    pub fn start() -> SilentDns {
        let sock = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .expect("bind UDP 127.0.0.1:0");
        let addr = sock.local_addr().expect("udp local_addr");
        SilentDns { addr, _sock: sock }
    }
}
