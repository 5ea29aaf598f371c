"""An async client for the few Kubo RPC API calls the platform needs: add, cat, pin, unpin, stat, version.

Works against kubo and against the project's js-ipfs node alike. Every `cat` streams with a byte cap and is
verified against its CID before it is returned; CIDs are always compared decoded (js-ipfs answers CIDv1 in
base58btc unless asked for base32). Transient failures (connection refused or reset, 502/503/504) are retried
with exponential backoff; everything else fails at once with a typed error from `offchain.ipfs.errors`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from multiformats import CID
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from offchain.ipfs.cid import (
    DEFAULT_CHUNK_SIZE,
    DagBuilder,
    NotAFile,
    build_dag,
    cid_equal,
    decode_file_node,
    normalize_cid,
    parse_cid,
)
from offchain.ipfs.dag_check import verify_dag
from offchain.ipfs.errors import (
    CidMismatch,
    InvalidCid,
    IpfsError,
    IpfsNotFound,
    IpfsTimeout,
    IpfsTooLarge,
    IpfsUnavailable,
)
from offchain.ipfs.store import THREAD_HASH_THRESHOLD, ContentStat

__all__ = [
    "CidMismatch",
    "ContentStat",
    "InvalidCid",
    "IpfsClient",
    "IpfsError",
    "IpfsNotFound",
    "IpfsTimeout",
    "IpfsTooLarge",
    "IpfsUnavailable",
    "NotAFile",
]

T = TypeVar("T")

# Node messages that mean "this content is not here and could not be found" (kubo and js-ipfs wordings).
_NOT_FOUND_MARKERS = (
    "request timed out",
    "context deadline exceeded",
    "not found",
    "no link named",
    "block was not found locally",
)
_TRANSIENT_STATUS = frozenset({502, 503, 504})
_MAX_BLOCK = 2 << 20  # kubo refuses blocks over 2 MiB, so nothing larger is a real block
_MAX_ERROR_BODY = 64 * 1024


async def _read_capped(
    response: aiohttp.ClientResponse, cap: int, too_large: str, feed: Callable[[bytes], object] | None = None
) -> bytes:
    """The whole body of `response` (it arrives in many network reads), each piece also given to `feed`;
    `IpfsTooLarge(too_large)` as soon as more than `cap` bytes arrive."""
    parts: list[bytes] = []
    total = 0
    async for piece in response.content.iter_any():
        total += len(piece)
        if total > cap:
            raise IpfsTooLarge(too_large)
        parts.append(piece)
        if feed is not None:
            feed(piece)
    return b"".join(parts)


class IpfsClient:
    """Async Kubo RPC API client; use as `async with IpfsClient(url) as ipfs:` or call `close()`.

    Args:
        api_url: the node's API base URL, e.g. `http://127.0.0.1:5001` (`/api/v0` is appended).
        timeout: seconds for one whole request (upload or download included).
        connect_timeout: seconds to open a connection.
        node_timeout: seconds the node may spend looking for content it does not hold (sent as the RPC
            `timeout` argument); past it, reads, pins and stats raise `IpfsNotFound`.
        retries: extra attempts after a transient failure (0 disables retrying).
        backoff_initial: first wait between attempts in seconds, doubled each time up to `backoff_max`.
        session: an aiohttp session to share (not closed by `close()`); one is created when None.
    """

    def __init__(
        self,
        api_url: str = "http://127.0.0.1:5001",
        *,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        node_timeout: float = 30.0,
        retries: int = 4,
        backoff_initial: float = 0.2,
        backoff_max: float = 2.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_url must be an http(s) URL like http://127.0.0.1:5001, not {api_url!r}")
        if timeout <= 0 or connect_timeout <= 0 or node_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, not {retries}")
        self.api_url = api_url.rstrip("/")
        self._base = f"{self.api_url}/api/v0"
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._node_timeout = f"{max(1, round(node_timeout))}s"
        self._retries = retries
        self._backoff = (backoff_initial, backoff_max)
        self._session = session
        self._own_session = session is None
        self._executor: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> IpfsClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it, and the hashing threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None if self._own_session else self._session

    def _hasher(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ipfs-verify")
        return self._executor

    def _post(self, url: str, **kwargs: Any) -> Any:
        # The timeout goes on every request, so that it also holds on a session shared by the caller.
        return self._http().post(url, timeout=self._timeout, **kwargs)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._own_session = True
        return self._session

    async def _with_retries(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(IpfsUnavailable),
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential(multiplier=self._backoff[0], min=self._backoff[0], max=self._backoff[1]),
            reraise=True,
        )
        async for state in retrying:
            with state:
                return await self._translate(what, attempt)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _translate(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        try:
            return await attempt()
        except IpfsError:
            raise
        except TimeoutError as exc:
            raise IpfsTimeout(f"{what}: the IPFS node at {self.api_url} did not answer in time") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            # Refused, reset, closed mid-answer: the node is down or restarting.
            raise IpfsUnavailable(f"{what}: cannot reach the IPFS node at {self.api_url} ({exc})") from exc
        except (ValueError, KeyError, TypeError, IndexError, aiohttp.ContentTypeError) as exc:
            # An answer that is not the JSON the RPC API documents: not a transient failure.
            raise IpfsError(f"{what}: unexpected answer from the IPFS node ({exc!r})"[:500]) from exc

    @staticmethod
    async def _raise_for_error(what: str, response: aiohttp.ClientResponse) -> None:
        if response.status == 200:
            return
        # Error bodies are small JSON objects; read no more than that from a misbehaving node.
        body = (await response.content.read(_MAX_ERROR_BODY)).decode("utf-8", errors="replace")
        try:
            message = str(json.loads(body).get("Message", body))
        except (ValueError, AttributeError):
            message = body
        message = message.strip()[:500]
        if response.status in (404, 405):
            raise IpfsError(f"{what}: the node has no such RPC call (HTTP {response.status}): {message}")
        if response.status in _TRANSIENT_STATUS:
            raise IpfsUnavailable(f"{what}: node answered HTTP {response.status}: {message}")
        lowered = message.lower()
        if any(marker in lowered for marker in _NOT_FOUND_MARKERS):
            raise IpfsNotFound(f"{what}: {message}")
        raise IpfsError(f"{what}: node answered HTTP {response.status}: {message}")

    async def _post_json(self, what: str, endpoint: str, params: dict[str, str]) -> Any:
        async def attempt() -> Any:
            async with self._post(f"{self._base}/{endpoint}", params=params) as response:
                await self._raise_for_error(what, response)
                return await response.json(content_type=None)

        return await self._with_retries(what, attempt)

    async def version(self) -> str:
        """The node's version string (e.g. `0.32.1` for kubo, `0.18.1` for js-ipfs)."""
        answer = await self._post_json("version", "version", {})
        if not isinstance(answer, dict) or not isinstance(answer.get("Version"), str):
            raise IpfsError(f"version: unexpected answer from the IPFS node: {str(answer)[:200]}")
        return answer["Version"]

    async def add(
        self,
        data: bytes,
        *,
        cid_version: int = 1,
        pin: bool = True,
        chunker: str | None = None,
        raw_leaves: bool | None = None,
        verify: bool = True,
        trickle: bool = False,
        wrap_with_directory: bool = False,
    ) -> str:
        """Store `data` on the node and return its CID (canonical text: base32 for v1, base58btc for v0).

        CIDv1 uses raw leaves, CIDv0 dag-pb leaves, as kubo does (`raw_leaves=False` gives CIDv1 with
        dag-pb leaves, as `--raw-leaves=false`). `chunker` (e.g. `size-1024`) overrides the
        node's default 256 KiB chunks. With `verify`, the CID is also computed locally (in a thread, while the
        upload runs) and a node that answers another CID raises `CidMismatch`. `trickle` (a trickle DAG) and
        `wrap_with_directory` (the answer is the CID of a directory holding the file) are the importer's own
        options; the local CID computation knows neither, so they need `verify=False`.
        """
        if (trickle or wrap_with_directory) and verify:
            raise ValueError("trickle and wrap_with_directory need verify=False (the local CID is balanced)")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if cid_version not in (0, 1):
            raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
        chunk_size = _parse_chunker(chunker)
        raw = cid_version == 1 if raw_leaves is None else raw_leaves
        if raw and cid_version == 0:
            raise ValueError("raw leaves need CIDv1")
        payload = bytes(data)
        options = {
            "chunker": chunker,
            "trickle": trickle or None,
            "wrap-with-directory": wrap_with_directory or None,
        }
        params = {
            "cid-version": str(cid_version),
            "raw-leaves": "true" if raw else "false",
            "pin": "true" if pin else "false",
            "cid-base": "base32" if cid_version == 1 else "base58btc",
            "progress": "false",
            **{k: "true" if v is True else str(v) for k, v in options.items() if v is not None},
        }
        expected = _local_cid(payload, cid_version, chunk_size, raw) if verify else None

        async def attempt() -> str:
            form = aiohttp.FormData()
            form.add_field("file", payload, filename="blob", content_type="application/octet-stream")
            async with self._post(f"{self._base}/add", params=params, data=form) as response:
                await self._raise_for_error("add", response)
                text = await response.text()
            # The answer is one JSON object per line; the one with the root's Hash is last.
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
            hashes = [entry["Hash"] for entry in lines if "Hash" in entry]
            if not hashes:
                raise IpfsError(f"add: the node answered no CID: {text[:200]!r}")
            return normalize_cid(hashes[-1])

        try:
            cid = await self._with_retries("add", attempt)
        except BaseException:
            if expected is not None:
                expected.cancel()
            raise
        if expected is not None:
            local = await expected
            if not cid_equal(local, cid):
                raise CidMismatch(f"add: the node stored the data as {cid}, but it hashes to {local}")
        return cid

    async def cat(self, cid: str, *, max_bytes: int) -> bytes:
        """The content of `cid`, verified against it; at most `max_bytes` bytes.

        Raises `IpfsTooLarge` as soon as more than `max_bytes` arrive (the node is also asked for at most
        `max_bytes + 1`), `IpfsNotFound` when the node cannot find the content within `node_timeout`, and
        `CidMismatch` when the bytes read do not hash to `cid`.
        """
        key = normalize_cid(cid)
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        params = {"arg": key, "length": str(max_bytes + 1), "timeout": self._node_timeout}
        parsed = parse_cid(key)

        async def attempt() -> tuple[bytes, bool]:
            # Verify while the bytes stream in, under the layout kubo's defaults give this CID (other layouts
            # are checked after the download). Leaves are hashed in worker threads as their chunk completes:
            # hashlib releases the GIL, so hashing runs beside the download on another core instead of
            # after it (bench/ipfs.py measured this against hashing on the loop and after the download).
            builder = (
                DagBuilder(parsed.version, executor=self._hasher()) if parsed.codec.name == "dag-pb" else None
            )
            digest = hashlib.sha256()
            feed = builder.update if builder is not None else digest.update
            async with self._post(f"{self._base}/cat", params=params) as response:
                await self._raise_for_error(f"cat {key}", response)
                too_large = f"cat {key}: content is larger than the cap of {max_bytes} bytes"
                data = await _read_capped(response, max_bytes, too_large, feed)
            if builder is not None:
                await asyncio.gather(*(asyncio.wrap_future(leaf) for leaf in builder.pending()))
                ok = cid_equal(builder.finish().cid, parsed)
            else:
                ok = digest.digest() == parsed.raw_digest
            return data, ok

        try:
            data, verified = await self._with_retries(f"cat {key}", attempt)
        except (IpfsNotFound, IpfsUnavailable, IpfsTimeout, IpfsTooLarge, CidMismatch):
            raise
        except IpfsError as exc:
            # The node refused to cat it: a directory, a symlink, a non-UnixFS node. Say which, from the root.
            await self._refuse_non_file(key, exc)
            raise
        if verified:
            return data
        # Content imported with other settings (`--raw-leaves=false`, a `--chunker`, 1 MiB chunks, a trickle
        # DAG, a hand-made DAG) does not rebuild to its CID with kubo's defaults: walk the DAG itself.
        await self.verify_dag(key, data)
        return data

    async def verify_dag(self, cid: str, data: bytes) -> None:
        """Raise `CidMismatch` unless `data` is exactly the file the UnixFS DAG under `cid` describes, its
        blocks read from this node (offchain/ipfs/dag_check.py says how; any layout)."""
        await verify_dag(cid, data, self.block_get)

    async def _refuse_non_file(self, key: str, cause: IpfsError) -> None:
        """Raise `NotAFile` when the root block of `key` is no UnixFS file; return when it is (or unknown)."""
        parsed = parse_cid(key)
        if parsed.codec.name != "dag-pb":
            return
        try:
            block = await self.block_get(parsed)
        except IpfsError:
            return
        try:
            decode_file_node(block)
        except NotAFile as exc:
            raise NotAFile(f"{key} is not a file: {exc}; mint the CID of the file itself") from cause
        except ValueError:
            return

    async def block_get(self, cid: str | bytes | CID) -> bytes:
        """One raw block, checked against its CID (`CidMismatch` otherwise); at most 2 MiB."""
        parsed = parse_cid(cid)
        key = normalize_cid(parsed)
        params = {"arg": key, "timeout": self._node_timeout}

        async def attempt() -> bytes:
            async with self._post(f"{self._base}/block/get", params=params) as response:
                await self._raise_for_error(f"block get {key}", response)
                return await _read_capped(
                    response, _MAX_BLOCK, f"block get {key}: larger than {_MAX_BLOCK} bytes"
                )

        block = await self._with_retries(f"block get {key}", attempt)
        if hashlib.sha256(block).digest() != parsed.raw_digest:
            raise CidMismatch(f"block {key} read from the node does not hash to its CID")
        return block

    async def pin(self, cid: str) -> None:
        """Pin `cid` recursively; raises `IpfsNotFound` when the node cannot find it within `node_timeout`."""
        key = normalize_cid(cid)
        await self._post_json(f"pin {key}", "pin/add", {"arg": key, "timeout": self._node_timeout})

    async def unpin(self, cid: str) -> bool:
        """Remove the recursive pin of `cid`; returns False when it was not pinned (idempotent)."""
        key = normalize_cid(cid)
        try:
            await self._post_json(f"unpin {key}", "pin/rm", {"arg": key})
        except IpfsError as exc:
            if "not pinned" in str(exc).lower():
                return False
            raise
        return True

    async def is_pinned(self, cid: str) -> bool:
        """True when `cid` is pinned recursively (directly, not only as a child of another pin)."""
        key = normalize_cid(cid)
        try:
            answer = await self._post_json(f"pin ls {key}", "pin/ls", {"arg": key, "type": "recursive"})
        except IpfsError as exc:
            if "not pinned" in str(exc).lower():
                return False
            raise
        keys = answer.get("Keys") if isinstance(answer, dict) else None
        if not isinstance(keys, dict):
            raise IpfsError(f"pin ls {key}: unexpected answer from the IPFS node: {str(answer)[:200]}")
        return any(cid_equal(found, key) for found in keys)

    async def stat(self, cid: str) -> ContentStat:
        """Sizes of `cid` (`files/stat`); raises `IpfsNotFound` when the node cannot find it."""
        key = normalize_cid(cid)
        answer = await self._post_json(
            f"stat {key}",
            "files/stat",
            {"arg": f"/ipfs/{key}", "cid-base": "base32", "timeout": self._node_timeout},
        )
        try:
            described = str(answer["Hash"])
            stat = ContentStat(
                cid=key,
                size=int(answer["Size"]),
                cumulative_size=int(answer["CumulativeSize"]),
                blocks=int(answer["Blocks"]),
                type="directory" if answer.get("Type") == "directory" else "file",
            )
            same = cid_equal(described, key)
        except (KeyError, TypeError, ValueError) as exc:
            raise IpfsError(f"stat {key}: unexpected answer from the IPFS node ({exc})"[:500]) from None
        if not same:
            raise CidMismatch(f"stat {key}: the node described another CID, {described[:100]}")
        return stat


def _local_cid(payload: bytes, cid_version: int, chunk_size: int, raw_leaves: bool) -> asyncio.Future[str]:
    """The CID kubo gives `payload` with these settings, computed here: in a thread (beside the upload)
    for a large payload, at once for a small one."""
    if len(payload) >= THREAD_HASH_THRESHOLD:
        return asyncio.ensure_future(
            asyncio.to_thread(lambda: build_dag(payload, cid_version, chunk_size, raw_leaves=raw_leaves).cid)
        )
    done = asyncio.get_running_loop().create_future()
    done.set_result(build_dag(payload, cid_version, chunk_size, raw_leaves=raw_leaves).cid)
    return done


def _parse_chunker(chunker: str | None) -> int:
    if chunker is None:
        return DEFAULT_CHUNK_SIZE
    prefix, _, size = chunker.partition("-")
    if prefix != "size" or not size.isdigit() or not 1 <= int(size) <= 1 << 20:
        raise ValueError(f"chunker must be size-N with 1 <= N <= 1048576, not {chunker!r}")
    return int(size)
