"""A fault-injecting HTTP proxy for the storage and download tests.

It forwards every request to an upstream S3 server (moto's, on 127.0.0.1) and can answer
500/503 to the first requests for each key, cut connections after a few body bytes, serve
one corrupted byte, stall answers (for client timeouts), or hold new GETs once a byte
budget is served (to kill a client at a known point). Random faults (``chaos``) hit any
request with given rates, from a seeded generator. It counts the body bytes it served
for successful GETs, and the faults it injected.
"""

import http.client
import random
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "host"}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that gave up on a stalled or cut answer are expected here


class FaultProxy:
    """Start with ``FaultProxy(upstream_url)``; set the fault knobs; ``close()`` when done."""

    def __init__(self, upstream: str):
        target = urlparse(upstream)
        self.upstream = (target.hostname, target.port)
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.reset()
        self.server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        """No faults, counters at zero."""
        with self.lock:
            self.fail_first = 0  # per key: answer 500/503 to this many requests first ...
            self.fail_methods = ("GET", "HEAD")  # ... of these methods
            self.cut_first = 0  # this many GET bodies are cut ...
            self.cut_after = 1024  # ... after this many bytes
            self.corrupt_once = False  # flip one byte of the next GET body
            self.stall_first = 0  # this many GETs send nothing for stall_seconds first
            self.stall_seconds = 2.0
            self.hold_after = None  # new GETs wait once this many body bytes were served
            self.fail_rate = 0.0  # random faults: share of requests answered 503 ...
            self.cut_rate = 0.0  # ... of GET bodies cut after a random number of bytes ...
            self.stall_rate = 0.0  # ... of GETs stalled for stall_seconds ...
            self.flip_rate = 0.0  # ... of GET bodies with one byte flipped
            self.flip_within = (0, float("inf"))  # ... only bodies of ranges inside these bytes
            self.rng = random.Random(0)
            self.injected = {"503": 0, "cut": 0, "stall": 0, "flip": 0}
            self.bytes_served = 0
            self.requests = 0
            self.in_flight = 0
            self.failed: dict[str, int] = {}
            self.bytes_by_path: Counter = Counter()  # body bytes of 2xx GETs, per URL path
            self.lists = 0  # bucket listings answered
        self.released.set()

    def chaos(self, *, seed: int = 0, fail=0.0, cut=0.0, stall=0.0, flip=0.0, stall_seconds=2.0):
        """Random faults from now on: each request draws its fate from ``seed``'s generator."""
        with self.lock:
            self.rng = random.Random(seed)
            self.fail_rate, self.cut_rate, self.stall_rate = fail, cut, stall
            self.flip_rate, self.stall_seconds = flip, stall_seconds

    def _draw(self, rate: float, kind: str) -> bool:
        """Under the lock: True (and counted) with probability ``rate``."""
        if rate > 0 and self.rng.random() < rate:
            self.injected[kind] += 1
            return True
        return False

    def hold_at(self, nbytes: int) -> None:
        with self.lock:
            self.hold_after = nbytes
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    # -- decisions, made under the lock -------------------------------------------------

    def _should_fail(self, method: str, path: str) -> int | None:
        with self.lock:
            self.requests += 1
            done = self.failed.get(path, 0)
            if method in self.fail_methods and done < self.fail_first:
                self.failed[path] = done + 1
                return 503 if done % 2 else 500
            if self._draw(self.fail_rate, "503"):
                return 503
        return None

    def _should_stall(self) -> float:
        with self.lock:
            if self.stall_first > 0:
                self.stall_first -= 1
                return self.stall_seconds
            if self._draw(self.stall_rate, "stall"):
                return self.stall_seconds
        return 0.0

    def _must_wait(self) -> bool:
        with self.lock:
            return self.hold_after is not None and self.bytes_served >= self.hold_after

    def _body_fault(self, body: bytes, first: int) -> tuple[bytes, int | None]:
        """The body to send, and after how many bytes to cut the connection (None: never)."""
        with self.lock:
            if self.cut_first > 0 and len(body) > self.cut_after:
                self.cut_first -= 1
                self.bytes_served += self.cut_after
                return body, self.cut_after
            if len(body) > 1 and self._draw(self.cut_rate, "cut"):
                cut = self.rng.randrange(len(body))
                self.bytes_served += cut
                return body, cut
            if self.corrupt_once and body:
                self.corrupt_once = False
                body = _flip(body, len(body) // 2)
            elif body and self._inside(first, len(body)) and self._draw(self.flip_rate, "flip"):
                body = _flip(body, self.rng.randrange(len(body)))
            self.bytes_served += len(body)
            return body, None


    def _inside(self, first: int, length: int) -> bool:
        lo, hi = self.flip_within
        return lo <= first and first + length <= hi


    def _count(self, url_path: str, nbytes: int) -> None:
        path, _, query = url_path.partition("?")
        with self.lock:
            if "list-type" in query:
                self.lists += 1
            else:
                self.bytes_by_path[path] += nbytes

    def bytes_of(self, key: str) -> int:
        """Body bytes served for one object key of the bucket (path-style URLs)."""
        with self.lock:
            return sum(n for path, n in self.bytes_by_path.items() if path.endswith("/" + key))


def _first_byte(headers) -> int:
    """Where a ranged answer starts in the object (0 for a whole one)."""
    value = headers.get("Content-Range", "")
    return int(value.split()[1].split("-")[0]) if value.startswith("bytes ") else 0


def _flip(body: bytes, at: int) -> bytes:
    return body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]


def _handler_for(proxy: FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_HEAD(self):
            self._forward()

        def do_GET(self):
            self._forward()

        def do_PUT(self):
            self._forward()

        def _forward(self):
            status = proxy._should_fail(self.command, self.path)
            if status:
                self._send_error(status)
                return
            if self.command == "GET" and proxy._must_wait():
                proxy.released.wait()
            if self.command == "GET":
                time.sleep(proxy._should_stall())
            with proxy.lock:
                proxy.in_flight += 1
            try:
                self._relay()
            finally:
                with proxy.lock:
                    proxy.in_flight -= 1

        def _relay(self):
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                conn.request(self.command, self.path, body=payload, headers=headers)
                upstream = conn.getresponse()
                body = upstream.read()
            finally:
                conn.close()
            cut = None
            if self.command == "GET" and 200 <= upstream.status < 300:
                body, cut = proxy._body_fault(body, _first_byte(upstream.headers))
                proxy._count(self.path, len(body) if cut is None else cut)
            self.send_response(upstream.status)
            for key, value in upstream.getheaders():
                if key.lower() not in _HOP_HEADERS and key.lower() not in ("server", "date"):
                    self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            self.wfile.write(body if cut is None else body[:cut])
            if cut is not None:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def _send_error(self, status: int):
            body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler
