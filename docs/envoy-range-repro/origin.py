"""A tiny stand-in for the S3 origin: GET/HEAD /<anything>/<size> answers a 200 with <size>
deterministic bytes, `Cache-Control: public, max-age=3600`, and ignores Range (as the gateway's
origin cluster makes S3 do by stripping it). Paths containing /slow/ stream 64 KiB every 10 ms,
so a client can hang up while Envoy is still fetching. Usage: python origin.py PORT"""

import http.server
import socketserver
import sys
import time


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self, head: bool = False) -> None:
        size = int(self.path.split("?")[0].rsplit("/", 1)[-1])
        body = (bytes(range(256)) * (size // 256 + 1))[:size]
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Cache-Control", "public, max-age=3600")
        self.end_headers()
        if head:
            return
        step = 65536 if "/slow/" in self.path else max(size, 1)
        for i in range(0, size, step):
            self.wfile.write(body[i:i + step])
            if "/slow/" in self.path:
                self.wfile.flush()
                time.sleep(0.01)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def log_message(self, *args) -> None:
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # Envoy hung up on a slow answer (the scenarios make it do so): not news


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Origin).serve_forever()
