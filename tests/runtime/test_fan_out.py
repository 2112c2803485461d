"""Work on several sources at once: everything produced arrives, in bounded memory, errors reach the consumer,
and a consumer that stops early stops the workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from prefect_encord.runtime.fan_out import merged


def test_everything_each_source_produces_arrives_once() -> None:
    def produce(source: int) -> Iterator[tuple[int, int]]:
        for n in range(50):
            yield source, n

    got = list(merged(range(8), produce, workers=3))
    assert sorted(got) == [(s, n) for s in range(8) for n in range(50)]


def test_sources_are_worked_on_side_by_side_and_memory_stays_bounded() -> None:
    running, most, produced = 0, 0, 0
    lock = threading.Lock()

    def produce(source: int) -> Iterator[int]:
        nonlocal running, most, produced
        with lock:
            running += 1
            most = max(most, running)
        try:
            for n in range(100):
                with lock:
                    produced += 1
                yield n
                time.sleep(0.001)
        finally:
            with lock:
                running -= 1

    stream = merged(range(6), produce, workers=3, buffered=2)
    first = next(stream)
    time.sleep(0.2)  # the workers run ahead, until the queue of 3 × 2 is full
    assert first in range(100) and produced <= 1 + 3 * 2 + 3  # taken, queued, and one in each worker's hand
    assert len(list(stream)) == 599 and most == 3


def test_an_error_in_a_source_reaches_the_consumer() -> None:
    def produce(source: int) -> Iterator[int]:
        yield source
        if source == 2:
            raise OSError("the listing of source 2 failed")

    with pytest.raises(OSError, match="source 2 failed"):
        list(merged(range(4), produce, workers=2))


def test_a_consumer_that_stops_early_stops_the_workers() -> None:
    started = threading.Event()

    def produce(source: int) -> Iterator[int]:
        started.set()
        n = 0
        while True:  # endless: only the consumer's stop ends it
            yield n
            n += 1

    stream = merged(range(2), produce, workers=2)
    assert next(stream) == 0 and started.is_set()
    begun = time.monotonic()
    stream.close()
    assert time.monotonic() - begun < 2 and not [t for t in threading.enumerate() if t.name.startswith("fan-out")]
