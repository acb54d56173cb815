"""What the benchmark scripts share: a free loopback port, and waiting for a server's first 200.

Imported by scripts/bench-cold.sh, scripts/startup-order.sh, scripts/bench-blackbox.sh,
scripts/soak.sh and scripts/bench/native.py (the shell scripts put this directory on
PYTHONPATH). Only 127.0.0.1 is used."""
import socket
import time


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that nothing holds right now (bound, read, released)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_200(port, path="/", proc=None, deadline_s=10.0, pause_s=0.0002, what="server"):
    """Sends `GET path` on a fresh connection every `pause_s` until one is answered 200;
    returns time.perf_counter() at that answer. Gives up (SystemExit naming `what`) after
    `deadline_s`, or at once when `proc` (a Popen) has exited. A connection that is accepted
    but answered otherwise (a 503 while starting) counts as not yet."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    end = time.perf_counter() + deadline_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=max(1.0, deadline_s / 4)) as s:
                s.sendall(request)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter()
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what}: exited ({proc.returncode}) before a 200 on :{port}{path}")
        if time.perf_counter() > end:
            if proc is not None:
                proc.kill()
            raise SystemExit(f"{what}: no 200 on :{port}{path} within {deadline_s} s")
        time.sleep(pause_s)
