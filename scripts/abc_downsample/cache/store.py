"""Remote object access: the ABC Atlas S3 bucket (anonymous) or a local directory mirror.

`open_store` returns a `Store` with the same methods for both. S3 reads go through one
thread-safe urllib3 connection pool with plain ranged GETs to the object URL botocore
resolves (unsigned, so no per-request signing): stream mode issues hundreds of thousands
of small range reads, and boto3's per-call overhead would dominate them.
"""

import logging
import os
import random
import re
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

import urllib3

from abc_downsample.errors import AbcError, TransientError
from abc_downsample.units import MiB

log = logging.getLogger(__name__)

REGION = "us-west-2"
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
CONNECT_TIMEOUT = 15.0


class _Retryable(Exception):
    """One failed attempt that is worth repeating."""


class Store:
    """Read-only access to objects addressed by key (the manifest's ``relative_path``)."""

    description = "store"

    def size(self, key: str) -> int:
        raise NotImplementedError

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of the object."""
        raise NotImplementedError

    def list_keys(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def iter_range(self, key: str, start: int, stop: int, chunk: int = MiB) -> Iterator[bytes]:
        """Bytes ``[start, stop)`` as a stream of pieces (one request on S3, little memory)."""
        for lo, hi in iter_chunks(start, stop, chunk):
            yield self.read_range(key, lo, hi)

    def read_ranges(
        self,
        key: str,
        ranges: Sequence[tuple[int, int]],
        max_workers: int = 16,
        each: Callable[[int, bytes], object] | None = None,
    ) -> list:
        """Read many ``(start, stop)`` ranges concurrently; results in the order given.

        At most a few requests per worker are queued at a time, so hundreds of thousands
        of ranges do not become as many pending futures. Every wait is bounded by
        ``wait_limit()``: a request that neither ends nor fails in that time (each try is
        bounded by the connection's timeouts) fails the read with one line.

        ``each(i, data)``, if given, runs on the worker thread as range ``i``'s bytes
        arrive (work that overlaps the other fetches, e.g. decoding); its return value
        is range i's result. It must not wait on anything unbounded.
        """
        if len(ranges) <= 1 or max_workers <= 1:
            return [
                self._read_one(key, i, start, stop, each)
                for i, (start, stop) in enumerate(ranges)
            ]
        results: list = []
        window: deque[Future] = deque()
        limit = self.wait_limit()
        pool = ThreadPoolExecutor(max_workers=min(max_workers, len(ranges)))
        try:
            for i, (start, stop) in enumerate(ranges):
                if len(window) >= 4 * max_workers:
                    results.append(_result(window.popleft(), limit, key, self))
                window.append(pool.submit(self._read_one, key, i, start, stop, each))
            while window:
                results.append(_result(window.popleft(), limit, key, self))
        finally:
            # never wait here for stuck workers: their sockets time out on their own
            pool.shutdown(wait=not window, cancel_futures=True)
        return results

    def _read_one(self, key: str, i: int, start: int, stop: int, each) -> object:
        data = self.read_range(key, start, stop)
        return data if each is None else each(i, data)

    def wait_limit(self) -> float:
        """Longest wait for one queued ranged read: all its tries, queued behind others."""
        return 3600.0


def _result(future: Future, limit: float, key: str, store: Store) -> bytes:
    try:
        return future.result(timeout=limit)
    except FutureTimeout:
        raise TransientError(
            f"a read of '{key}' from {store.description} made no progress in {limit:.0f} s: "
            "the network or the server stalls; rerun (Snakemake retries the job)"
        ) from None


def _check_range(key: str, start: int, stop: int) -> None:
    if start < 0 or stop < start:
        raise ValueError(f"bad byte range [{start}, {stop}) for {key}")


class LocalStore(Store):
    """A local directory with the bucket's key layout (offline demo, user mirrors)."""

    def __init__(self, root: Path):
        self.root = root
        self.description = f"local directory {root}"

    def _path(self, key: str) -> Path:
        path = self.root / key
        if not path.is_file():
            raise AbcError(
                f"'{key}' is not in {self.description}: "
                "check abc.bucket and that the mirror holds this release"
            )
        return path

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        _check_range(key, start, stop)
        fd = os.open(self._path(key), os.O_RDONLY)
        try:
            data = os.pread(fd, stop - start, start)
        finally:
            os.close(fd)
        if len(data) != stop - start:
            raise AbcError(
                f"'{key}' in {self.description} ends before byte {stop}: "
                "the mirror's copy is truncated; replace it"
            )
        return data

    def iter_range(self, key: str, start: int, stop: int, chunk: int = MiB) -> Iterator[bytes]:
        _check_range(key, start, stop)
        fd = os.open(self._path(key), os.O_RDONLY)
        try:
            for lo, hi in iter_chunks(start, stop, chunk):
                data = os.pread(fd, hi - lo, lo)
                if len(data) != hi - lo:
                    raise AbcError(
                        f"'{key}' in {self.description} ends before byte {stop}: "
                        "the mirror's copy is truncated; replace it"
                    )
                yield data
        finally:
            os.close(fd)

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        folder = base if base.is_dir() else base.parent
        if not folder.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()


def _error_code(body: bytes) -> str:
    match = re.search(rb"<Code>([^<]+)</Code>", body or b"")
    return match.group(1).decode() if match else ""


def _pool_manager(endpoint: str, max_pool: int) -> urllib3.PoolManager:
    """A connection pool, through the HTTP(S)_PROXY the environment names for this host."""
    host = urlparse(endpoint).hostname or ""
    proxy = urllib.request.getproxies().get(urlparse(endpoint).scheme)
    ca_certs = os.environ.get("AWS_CA_BUNDLE") or None
    if proxy and not urllib.request.proxy_bypass(host):
        return urllib3.ProxyManager(proxy, num_pools=4, maxsize=max_pool, ca_certs=ca_certs)
    return urllib3.PoolManager(num_pools=4, maxsize=max_pool, ca_certs=ca_certs)


class S3Store(Store):
    """Reads from an S3 bucket (AWS or an S3-compatible endpoint): anonymous, or signed with
    the standard AWS credential chain (a bucket that needs credentials, e.g. the staging one)."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None,
        retries: int,
        max_pool: int,
        read_timeout: float,
        anonymous: bool,
    ):
        self.bucket = bucket
        self.retries = max(1, retries)
        self.timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout)
        self.read_timeout = read_timeout
        self._urls = _boto_client(endpoint_url, max_pool, anonymous=True)  # builds plain URLs
        self._client = self._urls if anonymous else _boto_client(endpoint_url, max_pool, False)
        self._credentials = None if anonymous else _credentials()
        self.endpoint = self._client.meta.endpoint_url
        self.description = f"S3 bucket '{bucket}' at {self.endpoint}"
        self._http = _pool_manager(self.endpoint, max_pool)
        self._url = lru_cache(maxsize=4096)(self._object_url)

    def _object_url(self, key: str) -> str:
        return self._urls.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}
        )

    def _signed(self, method: str, url: str, headers: dict | None) -> dict | None:
        """``headers`` with a SigV4 signature (credentials as they are now: temporary ones
        are refreshed by botocore)."""
        if self._credentials is None:
            return headers
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
        frozen = self._credentials.get_frozen_credentials()
        S3SigV4Auth(frozen, "s3", REGION).add_auth(request)
        return dict(request.headers)

    def wait_limit(self) -> float:
        """Longest wait for one ranged read: its tries, each bounded by the connect and
        read timeouts plus backoff, twice over (a read a server answers short is asked
        again). A request still running then is a stall, reported as one."""
        return 2 * self.retries * (CONNECT_TIMEOUT + self.read_timeout + 20.0)

    # -- one request, with retries -------------------------------------------------------

    def _request(self, method: str, key: str, headers: dict | None = None, stream=False):
        """Send one request; transient failures are retried with exponential backoff."""
        url = self._url(key)
        cause = ""
        for attempt in range(self.retries):
            if attempt:
                time.sleep(_backoff(attempt))
            try:
                return self._attempt(method, url, key, headers, stream)
            except _Retryable as err:
                cause = str(err)
                log.debug("retrying %s %s (%d/%d): %s", method, key, attempt + 1, self.retries, err)
        raise TransientError(self._unreachable_message(key, cause))

    def _attempt(self, method: str, url: str, key: str, headers: dict | None, stream: bool):
        try:
            resp = self._http.request(
                method,
                url,
                headers=self._signed(method, url, headers),
                timeout=self.timeout,
                retries=False,
                redirect=False,
                preload_content=not stream,
                decode_content=False,  # bytes as stored, even with a Content-Encoding
            )
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _Retryable(_short(err)) from err
        if resp.status in _TRANSIENT_STATUS:
            raise _Retryable(f"HTTP {resp.status} {_error_code(resp.data)}".strip())
        if resp.status >= 300:
            raise self._http_error(method, key, resp)
        return resp

    def _unreachable_message(self, key: str, cause: str) -> str:
        return (
            f"could not read '{key}' from {self.description} after {self.retries} tries "
            f"({cause}): check the network and abc.endpoint_url (on compute nodes without "
            "internet set abc.download_on_host: true), then rerun"
        )

    def _no_such_bucket(self) -> AbcError:
        return AbcError(
            f"S3 bucket '{self.bucket}' does not exist at {self.endpoint}: "
            "check abc.bucket and abc.endpoint_url"
        )

    def _http_error(self, method: str, key: str, resp) -> AbcError:
        code = _error_code(resp.data)
        if resp.status == 404 and method == "HEAD":
            code = self._probe_code(key)  # HEAD answers carry no error body
        if code == "NoSuchBucket":
            return self._no_such_bucket()
        if resp.status == 404:
            return AbcError(
                f"'{key}' is not in {self.description}: check abc.release and the manifest"
            )
        if resp.status == 403:
            fix = (
                "the object is not public: a bucket that needs credentials wants "
                "abc.anonymous: false"
                if self._credentials is None
                else "check the AWS credentials the workflow signs with"
            )
            return AbcError(
                f"access to '{key}' in {self.description} is denied ({code or 'HTTP 403'}): "
                f"the key may not exist (check abc.release), or {fix}"
            )
        if resp.status == 416:
            return AbcError(f"byte range past the end of '{key}' in {self.description}")
        return AbcError(f"unexpected HTTP {resp.status} {code} for '{key}' from {self.description}")

    def _probe_code(self, key: str) -> str:
        try:
            url, headers = self._url(key), {"Range": "bytes=0-0"}
            resp = self._http.request(
                "GET", url, headers=self._signed("GET", url, headers), timeout=self.timeout
            )
            return _error_code(resp.data)
        except (urllib3.exceptions.HTTPError, OSError):
            return ""

    # -- Store API -----------------------------------------------------------------------

    def size(self, key: str) -> int:
        resp = self._request("HEAD", key)
        return int(resp.headers["Content-Length"])

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        _check_range(key, start, stop)
        if stop == start:
            return b""
        headers = {"Range": f"bytes={start}-{stop - 1}"}
        for attempt in range(self.retries):
            resp = self._request("GET", key, headers)
            data = resp.data
            if _answers_range(resp, start, stop) and len(data) == stop - start:
                return data
            log.debug("short or unranged answer for %s (try %d): %d bytes", key, attempt, len(data))
            time.sleep(_backoff(attempt + 1))
        raise TransientError(
            self._unreachable_message(key, f"answers to bytes {start}-{stop - 1} were incomplete")
        )

    def iter_range(self, key: str, start: int, stop: int, chunk: int = MiB) -> Iterator[bytes]:
        """One ranged GET streamed in pieces; a cut stream continues where it stopped."""
        _check_range(key, start, stop)
        pos, failures, cause = start, 0, ""
        while pos < stop:
            if failures >= self.retries:
                raise TransientError(self._unreachable_message(key, cause))
            if failures:
                time.sleep(_backoff(failures))
            resp = self._request("GET", key, {"Range": f"bytes={pos}-{stop - 1}"}, stream=True)
            complete = False
            try:
                if not _answers_range(resp, pos, stop):
                    failures, cause = failures + 1, f"unexpected answer HTTP {resp.status}"
                    continue
                for piece in resp.stream(chunk):
                    pos += len(piece)
                    yield piece
                complete = True
            except (urllib3.exceptions.HTTPError, OSError) as err:
                failures, cause = failures + 1, _short(err)
            finally:
                _finish(resp, complete)
            if complete and pos < stop:
                failures, cause = failures + 1, "the answer ended early"

    def get_bytes(self, key: str) -> bytes:
        for _ in range(self.retries):
            resp = self._request("GET", key)
            expected = resp.headers.get("Content-Length")
            if expected is None or int(expected) == len(resp.data):
                return resp.data
        raise TransientError(self._unreachable_message(key, "answers were incomplete"))

    def list_keys(self, prefix: str) -> list[str]:
        return self._with_retries(lambda: self._list(prefix), prefix)

    def _list(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def _with_retries(self, call: Callable[[], list[str]], what: str) -> list[str]:
        """boto3 calls: its own retry handling, with errors mapped to one line."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise self._no_such_bucket() from err
            hint = "; if the bucket needs credentials, set abc.anonymous: false" if (
                self._credentials is None) else ""  # fmt: skip
            raise AbcError(f"listing '{what}' in {self.description} failed: {code}{hint}") from err
        except BotoCoreError as err:
            raise TransientError(self._unreachable_message(what, _short(err))) from err


def _answers_range(resp, start: int, stop: int) -> bool:
    """Did the server answer the range asked for (not the whole object, not another range)?

    A 200 is accepted for a range that is the whole object (servers may ignore Range then).
    """
    if resp.status == 200:
        return start == 0 and int(resp.headers.get("Content-Length", -1)) == stop
    match = re.match(r"bytes (\d+)-(\d+)/", resp.headers.get("Content-Range", ""))
    return resp.status == 206 and bool(match) and int(match.group(1)) == start


def _finish(resp, complete: bool) -> None:
    """Return a fully read connection to the pool; close one left mid-body."""
    if not complete:
        resp.close()
    resp.release_conn()


def configured_endpoint(endpoint_url: str | None) -> str | None:
    """The S3 endpoint a store talks to: abc.endpoint_url, else boto's environment
    variables; None is AWS itself."""
    return (
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )


def _credentials():
    """The AWS credential chain's credentials (environment, ~/.aws, a role), or one line."""
    import boto3

    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        raise AbcError(
            "abc.anonymous is false but no AWS credentials were found (environment "
            "variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or "
            "AWS_PROFILE): configure them, or set abc.anonymous: true for a public bucket"
        )
    return credentials


def _boto_client(endpoint_url: str | None, max_pool: int, anonymous: bool):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    configured = configured_endpoint(endpoint_url)
    # AWS itself: regional virtual-hosted URLs; other endpoints: let botocore choose (path).
    addressing = "auto" if configured else "virtual"
    config = Config(
        signature_version=UNSIGNED if anonymous else "s3v4",
        region_name=REGION,
        max_pool_connections=max_pool,
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=15,
        read_timeout=120,
        s3={"addressing_style": addressing},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


BACKOFF_S = 0.25  # the first retry's wait (the tests' fault servers need less)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: 0.25 s, 0.5 s, 1 s ... capped at 20 s."""
    return min(20.0, BACKOFF_S * 2 ** (attempt - 1)) * (0.5 + random.random())


def _short(err: BaseException) -> str:
    """The gist of a network error, e.g. "NewConnectionError: [Errno 111] Connection refused"."""
    text = str(err).splitlines()[0] if str(err) else ""
    if "[Errno" in text:
        # from the inside of urllib3's "...: Failed to resolve 'host' ([Errno -2] ...)":
        # without the closing parentheses of what is cut off
        text = text[text.index("[Errno") :]
        while text.endswith(")") and text.count(")") > text.count("("):
            text = text[:-1]
    return f"{type(err).__name__}: {text}"[:200]


def local_root(bucket: str) -> Path | None:
    """The directory a ``bucket`` value names, or None if it is an S3 bucket name."""
    if bucket.startswith("file://"):
        return Path(unquote(urlparse(bucket).path))
    if "/" in bucket or bucket.startswith(".") or Path(bucket).is_dir():
        return Path(bucket)
    return None


def open_store(
    bucket: str,
    endpoint_url: str | None = None,
    *,
    retries: int,
    max_pool: int,
    read_timeout: float,
    anonymous: bool,
) -> Store:
    """Open an S3 bucket (us-west-2; anonymous, or signed with the AWS credential chain) or
    a local directory mirroring its layout. ``read_timeout``: seconds without a byte before
    a request counts as failed."""
    if not bucket:
        raise AbcError("abc.bucket is empty: set it to an S3 bucket name or a local directory")
    root = local_root(bucket)
    if root is None:
        return S3Store(bucket, endpoint_url, retries, max_pool, read_timeout, anonymous)
    if not root.is_dir():
        raise AbcError(
            f"abc.bucket '{bucket}' is not a directory: give an existing mirror "
            "directory or an S3 bucket name"
        )
    log.info("reading the release from the local directory %s", root)
    return LocalStore(root.resolve())


def store_from_config(abc: dict, mode: str = "download") -> Store:
    """The store of the validated config's ``abc`` block: the one place that opens it.
    ``mode`` (download or stream) says whose read timeout applies."""
    return open_store(
        abc["bucket"],
        abc["endpoint_url"],
        retries=abc["download"]["retries"],
        max_pool=max(abc["download"]["max_concurrency"], abc["stream"]["max_concurrency"], 4),
        read_timeout=float(abc[mode]["timeout_s"]),
        anonymous=abc["anonymous"],
    )


def iter_chunks(start: int, stop: int, chunk: int) -> Iterable[tuple[int, int]]:
    """``[start, stop)`` cut into ranges of at most ``chunk`` bytes."""
    for begin in range(start, stop, chunk):
        yield begin, min(stop, begin + chunk)
