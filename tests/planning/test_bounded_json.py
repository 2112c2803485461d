"""Bodies from strangers: too large or too deep is refused before any parser sees it."""

from __future__ import annotations

import json

import pytest

from prefect_encord.planning.bounded_json import MAX_DEPTH, BodyRefused, check_depth, check_size


def test_a_body_as_deep_as_allowed_passes_and_one_level_more_is_refused() -> None:
    check_depth(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    with pytest.raises(BodyRefused, match=f"deeper than {MAX_DEPTH} levels") as refused:
        check_depth(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert refused.value.status == 400


def test_a_hundred_thousand_levels_are_refused_where_json_would_recurse_to_death() -> None:
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    with pytest.raises(RecursionError):
        json.loads(body)
    with pytest.raises(BodyRefused):
        check_depth(body)


@pytest.mark.parametrize(
    "text",
    [
        '{"label": "' + "[" * 500 + '"}',  # brackets in a string are text
        '{"label": "a \\" [[[[ quoted", "b": "' + "{" * 300 + '"}',  # an escaped quote does not end it
        '{"path": "C:\\\\", "x": [' + '"[",' * 200 + '"]"]}',  # a string ending in a backslash does end
    ],
)
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    json.loads(text)  # each is valid JSON
    check_depth(text.encode())


def test_a_real_webhook_of_twenty_thousand_rows_passes() -> None:
    body = json.dumps({"uid": "u", "payload": {"label_hashes": [f"l{n}" for n in range(20_000)]}}).encode()
    check_depth(body)
    check_size(len(body))


def test_a_body_over_the_size_limit_is_413() -> None:
    check_size(100, limit=100)
    with pytest.raises(BodyRefused, match="larger than 100 bytes") as refused:
        check_size(101, limit=100)
    assert refused.value.status == 413
