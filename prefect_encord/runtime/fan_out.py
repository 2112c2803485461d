"""Work on several sources at once and take the results as they come, in bounded memory.

Listing a bucket page after page is bound by latency, not bandwidth: each page waits for a round trip. Listing
its top-level prefixes side by side (:meth:`~prefect_encord.blocks.storage.CloudStorageIntegration.list_object_pages`
with ``fan_out``) divides that wait. :func:`merged` runs ``produce(source)`` for ``workers`` sources at a time
and yields what they produce in the order it arrives; a worker waits while ``workers * buffered`` results are
waiting to be taken, so memory stays flat whatever the sources hold. An error in a worker is raised to the
consumer; a consumer that stops early (or fails) stops the workers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

S = TypeVar("S")
T = TypeVar("T")

#: How long a waiting worker sleeps between looks at whether the consumer stopped.
_WAKE_SECONDS = 0.1


def merged(sources: Sequence[S], produce: Callable[[S], Iterator[T]], workers: int, buffered: int = 2) -> Iterator[T]:
    """Everything ``produce`` yields for each of ``sources``, ``workers`` sources at a time, as it comes."""
    if workers < 1:
        raise ValueError(f"workers {workers} must be at least 1")
    results: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=workers * buffered)
    stop = threading.Event()

    def put(kind: str, value: object) -> bool:
        while not stop.is_set():
            try:
                results.put((kind, value), timeout=_WAKE_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def work(source: S) -> None:
        try:
            for item in produce(source):
                if not put("item", item):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, who raises it
            put("error", error)
        finally:
            put("done", None)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fan-out")
    try:
        for source in sources:
            pool.submit(work, source)
        finished = 0
        while finished < len(sources):
            kind, value = results.get()
            if kind == "item":
                yield cast(T, value)
            elif kind == "error":
                assert isinstance(value, BaseException)
                raise value
            else:
                finished += 1
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
