//! Readiness before the runtime: while the tokio runtime and its workers start on another
//! thread, the main thread answers the host's readiness polls (`GET /`, docs/host-contract.md
//! §2) straight from the listening socket, so the host learns that we are up without
//! waiting for threads, hyper and axum. The config has been read and checked by then
//! (`startup::check`), so "ready" means what it says.
//!
//! Only a complete `GET / HTTP/1.x` request, with no body and nothing after it, is
//! answered here; a connection whose request has not (all) arrived yet is watched until it
//! has or the loop ends; any other connection (a probe request, anything else) is kept
//! as accepted and handed to the real server (`linger::Listener`), which serves it as
//! if it had just accepted it. Nothing is read from a kept connection, so nothing is lost.
//! The loop never blocks on a client: each socket is peeked without waiting, and between
//! looks the thread sleeps in `ppoll` on the listener and the silent connections. It ends once
//! the runtime is built (or failed to build) and either a poll has been answered here, a
//! connection is waiting for the real server, or one host poll interval has passed: the
//! first request on a new runtime runs cold code and costs about half a millisecond more
//! than this loop's answer (docs/benchmarks.md, "Cold start"), and a poll that lands just
//! after the build is the usual case, not the exception.

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The readiness answer; the same bytes the router's `GET /` gives (`server::ready`).
const READY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n\
content-length: 6\r\nconnection: close\r\n\r\nready\n";

/// Longest request head answered here; larger ones go to the real server.
const HEAD_MAX: usize = 2048;

/// How long the loop sleeps when nothing is waiting (the runtime takes ~1 ms to build).
const IDLE: Duration = Duration::from_micros(50);

/// How long, once the runtime is built, the loop still waits for a first poll when none has
/// come: the host's poll interval at start-up (docs/host-contract.md, "Readiness").
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// What the loop holds between looks: the connections accepted and not answered, in
/// arrival order, each with what its request is so far, and whether a poll was answered.
#[derive(Default)]
pub struct Pending {
    conns: Vec<(TcpStream, Look)>,
    answered: bool,
}

/// Answers the polls already waiting on `listener` and returns at once, waiting for
/// nothing: `serve` calls it before it starts the runtime's thread, so a poll that came in
/// while the config was read is answered without waiting for a thread start.
pub fn answer_waiting(listener: &TcpListener) -> Pending {
    let mut pending = Pending::default();
    while sweep(listener, &mut pending) == Some(true) {}
    pending
}

/// Answers readiness polls on `listener` (non-blocking) until `built()` and then until a
/// poll has been answered, a connection is kept, or `POLL_INTERVAL` has passed; returns
/// the connections it accepted but did not answer, in arrival order.
///
/// Between looks the thread waits in `ppoll` on the listener and on every connection whose
/// request is still arriving, so a poll is answered the moment its bytes land, not after a
/// sleep: a connection accepted before its request came is watched, not handed over.
pub fn answer_until(listener: &TcpListener, built: impl Fn() -> bool) -> Vec<TcpStream> {
    continue_until(listener, Pending::default(), built)
}

/// `answer_until`, going on from what `answer_waiting` left.
pub fn continue_until(
    listener: &TcpListener,
    mut pending: Pending,
    built: impl Fn() -> bool,
) -> Vec<TcpStream> {
    let mut built_at: Option<std::time::Instant> = None;
    loop {
        match sweep(listener, &mut pending) {
            // Out of descriptors and the like: leave the rest to the real server.
            None => break,
            Some(true) => continue,
            Some(false) => {}
        }
        if built_at.is_none() && built() {
            built_at = Some(std::time::Instant::now());
        }
        if let Some(at) = built_at
            && (pending.answered
                || pending.conns.iter().any(|c| matches!(c.1, Look::Other))
                || at.elapsed() >= POLL_INTERVAL)
        {
            break;
        }
        wait(listener, &pending.conns);
    }
    pending.conns.into_iter().map(|(tcp, _)| tcp).collect()
}

/// One accept and one look at every connection still arriving, answering the complete
/// polls: `Some(true)` if a connection was accepted (look again), `Some(false)` if none
/// was waiting, `None` if accepting failed for good.
fn sweep(listener: &TcpListener, pending: &mut Pending) -> Option<bool> {
    let accepted = match listener.accept() {
        Ok((tcp, _)) => {
            // A socket that cannot be peeked without blocking goes to the real server.
            let seen = match tcp.set_nonblocking(true) {
                Ok(()) => Look::Partial(0),
                Err(_) => Look::Other,
            };
            pending.conns.push((tcp, seen));
            Some(true)
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Some(false),
        Err(e) if e.kind() == ErrorKind::Interrupted => Some(true),
        Err(_) => None,
    };
    let answered = &mut pending.answered;
    pending.conns.retain_mut(|(tcp, seen)| {
        if let Look::Partial(_) = seen {
            *seen = look(tcp);
        }
        match seen {
            Look::Poll => {
                answer(tcp);
                *answered = true;
                false
            }
            Look::Gone => false,
            Look::Partial(_) | Look::Other => true,
        }
    });
    accepted
}

/// What a connection has sent so far.
enum Look {
    /// A complete readiness poll and nothing after it.
    Poll,
    /// Nothing yet (0), or the first bytes of what may still be a poll.
    Partial(usize),
    /// Closed before sending anything.
    Gone,
    /// Anything else: the real server's.
    Other,
}

fn look(tcp: &TcpStream) -> Look {
    let mut head = [0u8; HEAD_MAX];
    let n = match tcp.peek(&mut head) {
        Ok(0) => return Look::Gone,
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock => return Look::Partial(0),
        Err(_) => return Look::Other,
    };
    let bytes = &head[..n];
    // Only a poll that is all the client sent: closing on unread bytes (a pipelined
    // request) would reset the connection, so those go to the real server instead.
    match readiness_poll_len(bytes) {
        Some(len) if len == n => Look::Poll,
        None if n < HEAD_MAX && may_become_poll(bytes) => Look::Partial(n),
        _ => Look::Other,
    }
}

/// `true` while `bytes` (no complete head yet) can still grow into a readiness poll.
fn may_become_poll(bytes: &[u8]) -> bool {
    const LINE: &[u8] = b"GET / HTTP/1.";
    let start = &bytes[..bytes.len().min(LINE.len())];
    !bytes.windows(4).any(|w| w == b"\r\n\r\n") && LINE.starts_with(start)
}

/// Reads the poll (all the client sent, `look` checked) and answers it; a client that
/// vanished is no concern of ours.
fn answer(tcp: &TcpStream) {
    let mut head = [0u8; HEAD_MAX];
    let mut reader = tcp;
    let _ = std::io::Read::read(&mut reader, &mut head);
    let _ = tcp.set_nodelay(true);
    let mut writer = tcp;
    let _ = writer.write_all(READY);
    let _ = tcp.shutdown(std::net::Shutdown::Write);
}

/// Sleeps until the listener or a connection that has sent nothing yet is readable, or
/// `IDLE` has passed. A connection with part of a poll in is readable already, so it is
/// looked at again after `IDLE` (the loop would spin on it otherwise).
fn wait(listener: &TcpListener, conns: &[(TcpStream, Look)]) {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> = std::iter::once(listener.as_raw_fd())
        .chain(
            conns
                .iter()
                .filter(|c| matches!(c.1, Look::Partial(0)))
                .map(|c| c.0.as_raw_fd()),
        )
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let idle = libc::timespec {
        tv_sec: 0,
        tv_nsec: IDLE.as_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a live, correctly sized array of pollfd for the whole call, `idle`
    // a valid timespec, and a null signal mask leaves the mask as it is. Any result is
    // fine: the caller looks at every socket again.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &idle,
            std::ptr::null(),
        );
    }
}

/// The length of the request head when `bytes` starts with a complete `GET /` request
/// without a body; `None` for anything else, or for a head not complete yet.
pub fn readiness_poll_len(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    if request_line != "GET / HTTP/1.1" && request_line != "GET / HTTP/1.0" {
        return None;
    }
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        let body = name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade");
        if body {
            return None;
        }
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn only_complete_bodiless_root_gets_are_polls() {
        let ok = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_eq!(readiness_poll_len(ok), Some(ok.len()));
        let pipelined = b"GET / HTTP/1.1\r\n\r\nGET /api/health HTTP/1.1\r\n\r\n";
        assert_eq!(readiness_poll_len(pipelined), Some(18));
        for not in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
            b"GET /api/probe HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nbroken header\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                readiness_poll_len(not),
                None,
                "{:?}",
                String::from_utf8_lossy(not)
            );
        }
    }

    /// The first `n` bytes still waiting on a kept connection.
    fn unread(tcp: &TcpStream, n: usize) -> Vec<u8> {
        tcp.set_nonblocking(false).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut bytes = vec![0u8; n];
        let mut reader = tcp;
        reader.read_exact(&mut bytes).unwrap();
        bytes
    }

    /// A non-blocking listener on loopback, as `serve` hands it over, and its address.
    fn listening() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    #[test]
    fn answers_polls_and_keeps_everything_else_unread() {
        let (listener, addr) = listening();
        let mut poll = TcpStream::connect(addr).unwrap();
        poll.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let probe_req = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let mut probe = TcpStream::connect(addr).unwrap();
        probe.write_all(probe_req).unwrap();
        let silent = TcpStream::connect(addr).unwrap();
        let pipelined_req = b"GET / HTTP/1.1\r\n\r\nGET /api/health HTTP/1.1\r\n\r\n";
        let mut pipelined = TcpStream::connect(addr).unwrap();
        pipelined.write_all(pipelined_req).unwrap();

        // Done once all four are accepted (the backlog is empty after them).
        let seen = std::cell::Cell::new(0);
        let kept = answer_until(&listener, || {
            seen.set(seen.get() + 1);
            seen.get() > 200
        });

        let mut answer = Vec::new();
        poll.read_to_end(&mut answer).unwrap();
        assert_eq!(
            answer, READY,
            "the poll gets the readiness answer, then EOF"
        );
        assert_eq!(
            kept.len(),
            3,
            "the probe request, the silent one and the pipelined pair are kept"
        );
        assert_eq!(
            unread(&kept[0], probe_req.len()),
            probe_req,
            "a kept connection's request is left unread"
        );
        assert_eq!(
            unread(&kept[2], pipelined_req.len()),
            pipelined_req,
            "a poll with more behind it is left whole"
        );
        drop(silent);
    }

    /// A connection accepted before its request arrived is watched, not handed over: its
    /// poll, sent later and in two pieces, is answered here. One that closes without
    /// sending anything is simply dropped.
    #[test]
    fn a_poll_that_arrives_after_its_connection_is_still_answered_here() {
        let (listener, addr) = listening();
        let poll = std::cell::RefCell::new(TcpStream::connect(addr).unwrap());
        drop(TcpStream::connect(addr).unwrap());
        let looks = std::cell::Cell::new(0);
        let kept = answer_until(&listener, || {
            looks.set(looks.get() + 1);
            match looks.get() {
                1 => poll.borrow_mut().write_all(b"GET / HT").unwrap(),
                2 => poll
                    .borrow_mut()
                    .write_all(b"TP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    .unwrap(),
                _ => {}
            }
            looks.get() >= 2
        });
        assert!(
            kept.is_empty(),
            "the poll was answered, the closed one dropped"
        );
        let mut answer = Vec::new();
        poll.borrow_mut().read_to_end(&mut answer).unwrap();
        assert_eq!(answer, READY);
    }

    /// Once the runtime is built the loop still waits for the first poll, and it stops
    /// waiting at once for a connection the real server must serve, or after one poll
    /// interval when nothing comes.
    #[test]
    fn after_the_build_it_waits_for_the_first_poll_but_not_for_anything_else() {
        let (listener, addr) = listening();
        let clients = std::cell::RefCell::new(Vec::new());
        // Built at the first look; the poll is sent only then, so only waiting answers it.
        let kept = answer_until(&listener, || {
            let mut poll = TcpStream::connect(addr).unwrap();
            poll.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            clients.borrow_mut().push(poll);
            true
        });
        assert!(kept.is_empty());
        let mut answer = Vec::new();
        clients.borrow_mut()[0].read_to_end(&mut answer).unwrap();
        assert_eq!(
            answer, READY,
            "the poll sent after the build is answered here"
        );

        let request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let kept = answer_until(&listener, || {
            let mut tcp = TcpStream::connect(addr).unwrap();
            tcp.write_all(request).unwrap();
            clients.borrow_mut().push(tcp);
            true
        });
        assert_eq!(kept.len(), 1, "a request for the real server ends the wait");
        assert_eq!(unread(&kept[0], request.len()), request);

        // Nothing comes: the loop ends by itself (after POLL_INTERVAL), keeping nothing.
        assert!(answer_until(&listener, || true).is_empty());
    }

    /// `answer_waiting` answers the poll already in, returns at once, and hands what it
    /// holds to `continue_until`: a poll half in is finished and answered there, and a
    /// request for the real server is kept, unread.
    #[test]
    fn a_waiting_poll_is_answered_before_the_loop_and_the_rest_carries_over() {
        let (listener, addr) = listening();
        let mut waiting = TcpStream::connect(addr).unwrap();
        waiting
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let half = std::cell::RefCell::new(TcpStream::connect(addr).unwrap());
        half.borrow_mut().write_all(b"GET / HTTP/1.1\r\n").unwrap();

        let pending = answer_waiting(&listener);
        let mut answer = Vec::new();
        waiting.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, READY, "the poll already in is answered at once");
        assert!(pending.answered);
        assert_eq!(pending.conns.len(), 1, "the half poll is held");

        // The rest of the half poll lands at the first look; built at the second.
        let looks = std::cell::Cell::new(0);
        let kept = continue_until(&listener, pending, || {
            looks.set(looks.get() + 1);
            if looks.get() == 1 {
                half.borrow_mut()
                    .write_all(b"Host: 127.0.0.1\r\n\r\n")
                    .unwrap();
            }
            looks.get() >= 2
        });
        assert!(kept.is_empty());
        let mut answer = Vec::new();
        half.borrow_mut().read_to_end(&mut answer).unwrap();
        assert_eq!(
            answer, READY,
            "the poll finished after answer_waiting is answered"
        );

        let request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let mut probe = TcpStream::connect(addr).unwrap();
        probe.write_all(request).unwrap();
        let pending = answer_waiting(&listener);
        assert!(!pending.answered);
        let kept = continue_until(&listener, pending, || true);
        assert_eq!(kept.len(), 1, "the request for the real server is kept");
        assert_eq!(unread(&kept[0], request.len()), request);
    }
}
