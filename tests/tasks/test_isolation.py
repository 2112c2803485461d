"""Isolating refusals: a bulk call refused for one bad element still sends every other element."""

from __future__ import annotations

from collections.abc import Sequence

from prefect_encord.tasks.isolation import send_isolating


class Refused(Exception):
    pass


def test_bad_elements_are_isolated_and_everything_else_is_sent_in_few_calls() -> None:
    calls: list[list[int]] = []
    sent: list[int] = []
    refused: dict[int, str] = {}

    def send(part: Sequence[int]) -> None:
        calls.append(list(part))
        if {3, 12} & set(part):
            raise Refused(f"refused {sorted({3, 12} & set(part))}")
        sent.extend(part)

    send_isolating(list(range(16)), send, Refused, lambda element, exc: refused.update({element: str(exc)}))

    assert sorted(sent) == [n for n in range(16) if n not in (3, 12)]
    assert refused == {3: "refused [3]", 12: "refused [12]"}
    assert len(calls) <= 1 + 2 * 2 * 4  # k log n, far from one call per element
