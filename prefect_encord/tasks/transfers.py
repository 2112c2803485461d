"""PUT local files to Encord's signed upload URLs: streamed as the SDK sends them, retried on connection errors, 408,
429 and 5xx (waiting at least as long as Retry-After), and checked while sent, so a file rewritten meanwhile fails
alone.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import httpx
from encord.orm.storage import UploadSignedUrl

from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.planning.uploads import (
    UploadUnit,
    media_type,
)
from prefect_encord.runtime.crashpoints import crash_point
from prefect_encord.runtime.interrupts import NOT_STARTED, stop_requested

CHUNK_BYTES = 1024 * 1024

PUT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=None)


def transfer_batch(
    pool: ThreadPoolExecutor,
    http: httpx.Client,
    root: Path,
    batch: Sequence[UploadUnit],
    slots: Mapping[str, UploadSignedUrl],
    read: Mapping[str, tuple[str, int]],
    policy: RetryPolicy,
    failed: dict[str, str],
) -> list[UploadUnit]:
    """PUT every file of the batch concurrently; record units with a failed file, return the others."""
    paths = [p for unit in batch for p in unit.files]

    def put(path: str) -> str | None:
        return NOT_STARTED if stop_requested() else put_file(http, root / path, slots[path], policy, read.get(path))

    errors = dict(zip(paths, pool.map(put, paths), strict=True))
    sent = []
    for unit in batch:
        problems = [f"{p}: {errors[p]}" for p in unit.files if errors[p]]
        if problems:
            failed[unit.key] = "upload failed: " + "; ".join(problems)
        else:
            sent.append(unit)
    return sent


def put_file(
    http: httpx.Client, path: Path, slot: UploadSignedUrl, policy: RetryPolicy, read: tuple[str, int] | None = None
) -> str | None:
    """PUT one file to its signed URL, streamed, as the SDK does; None on success, else the last error.

    A failed attempt is repeated after the policy's backoff, or after ``Retry-After`` if that is longer. A file
    whose size changes while it is sent fails at once (the next run sends it again), and whatever else the HTTP
    library raises fails this file's attempt, never the step: one file's trouble is one file's failure. Given
    ``read``, the digest and size the file had when it was identified, bytes that differ from them fail the file
    too: its item would carry the identity of other bytes.

    The headers are the SDK's (Content-Type by file type, ``Cache-Control``, the slot's own headers). An
    explicit Content-Length keeps the streamed body out of chunked encoding, which signed PUTs refuse.
    """
    media = media_type(path.name)
    headers = {
        "Content-Type": media[1] if media else "application/octet-stream",
        "Cache-Control": "max-age=86400",
        **slot.upload_headers,
    }
    error = "not attempted"
    for attempt in range(1, policy.max_attempts + 1):
        asked = ""  # the Retry-After of a throttled answer, in seconds
        try:
            with path.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                if read is not None and size != read[1]:
                    raise FileChangedWhileSent(f"{read[1]:,} bytes when it was read, {size:,} now")
                body = _chunks(stream, size, None if read is None else read[0])
                response = http.put(slot.signed_url, content=body, headers={**headers, "Content-Length": str(size)})
        except FileChangedWhileSent as exc:
            return f"changed during its upload ({exc}); the next run sends it again"
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 - httpx's errors and h11's unwrapped ones alike: this file's failure
            error = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                crash_point("upload.mid-put")
                return None
            error = f"HTTP {response.status_code} from the upload URL: {_reason(response)}"
            if not policy.retryable(response.status_code):
                return error
            asked = response.headers.get("retry-after", "")
        if attempt < policy.max_attempts:
            time.sleep(policy.wait(attempt, random.random(), asked))
    return f"{error} (gave up after {policy.max_attempts} attempts)"


def _reason(response: httpx.Response) -> str:
    """What a refusing storage service said: the ``message`` of a JSON answer, else the start of its text."""
    try:
        said = response.json()
    except ValueError:
        said = None
    message = said.get("message") if isinstance(said, dict) else None
    return str(message) if message else response.text[:200]


class FileChangedWhileSent(Exception):
    """A file's bytes no longer match the size declared for its upload: it was rewritten, grown or cut meanwhile."""


def _chunks(stream: IO[bytes], size: int, digest: str | None) -> Iterator[bytes]:
    """The file's bytes, exactly ``size`` of them (the Content-Length sent) and, given ``digest``, those bytes;
    else :class:`FileChangedWhileSent`, raised before the last chunk goes, so the upload does not complete."""
    sent, hashed, held = 0, hashlib.sha256(), b""
    while chunk := stream.read(CHUNK_BYTES):
        sent += len(chunk)
        if sent > size:
            raise FileChangedWhileSent(f"it grew beyond its {size:,} bytes")
        hashed.update(chunk)
        if held:
            yield held
        held = chunk
    if sent < size:
        raise FileChangedWhileSent(f"it ended after {sent:,} of its {size:,} bytes")
    if digest is not None and hashed.hexdigest() != digest:
        raise FileChangedWhileSent("its bytes changed since it was read")
    if held:
        yield held
