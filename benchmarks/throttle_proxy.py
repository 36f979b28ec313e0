"""A TCP proxy that caps the bandwidth of all its connections together, for benchmarks.

    python benchmarks/throttle_proxy.py --upstream 127.0.0.1:9000 --port 9100 \
        [--mbps 50] [--conn-mbps 50] [--latency-ms 20]

Bytes from the server to the clients share one token bucket of ``--mbps`` MB/s (1 MB =
10^6 bytes), like a single network link, and each connection has its own bucket of
``--conn-mbps`` MB/s, like S3's per-connection throughput (0: no limit); client-to-server
bytes (requests) are not limited. ``--latency-ms`` delays every client write (one HTTP
request, on keep-alive connections) by that much, a stand-in for the round trip to a
remote bucket. Prints ``listening <port>`` once ready.
"""

import argparse
import asyncio
import time

PIECE = 64 * 1024  # bytes relayed per read; small against a 50 MB/s budget (~1.3 ms)


class TokenBucket:
    """Shared bandwidth: callers wait until the link has carried their bytes."""

    def __init__(self, bytes_per_second: float, burst: int = 4 * PIECE):
        self.rate, self.burst = bytes_per_second, burst
        self.tokens, self.stamp = float(burst), time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        async with self.lock:  # FIFO: connections share the link fairly
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= n
            if self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.rate)


async def pipe(reader, writer, buckets: list[TokenBucket], delay: float) -> None:
    try:
        while data := await reader.read(PIECE):
            if delay:
                await asyncio.sleep(delay)
            for bucket in buckets:
                await bucket.take(len(data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(
    upstream: tuple[str, int], port: int, mbps: float, conn_mbps: float, latency_ms: float
) -> None:
    link = [TokenBucket(mbps * 1e6)] if mbps > 0 else []

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.close()
            return
        own = [TokenBucket(conn_mbps * 1e6)] if conn_mbps > 0 else []
        await asyncio.gather(
            pipe(client_reader, server_writer, [], latency_ms / 1000),
            pipe(server_reader, client_writer, own + link, 0),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="host:port of the server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mbps", type=float, default=50.0, help="MB/s for all connections")
    parser.add_argument("--conn-mbps", type=float, default=0.0, help="MB/s per connection")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    asyncio.run(serve((host, int(port)), args.port, args.mbps, args.conn_mbps, args.latency_ms))


if __name__ == "__main__":
    main()
