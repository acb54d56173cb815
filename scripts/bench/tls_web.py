"""A small HTTPS server for the bench scripts: Python's threading http.server behind OpenSSL,
answering every GET with 200 and the body `ok`, on 127.0.0.1."""
import http.server, ssl, threading


class _Handler(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else Nagle + delayed ACK adds ~40 ms to every first byte
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a): pass


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, *a): pass  # clients closing without close_notify are fine


def serve(cert, key):
    """Starts the server in a daemon thread; returns its port."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd.server_address[1]
