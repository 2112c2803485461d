"""Query-string reading as the SDK writes it: booleans as ``True``/``False``, lists as repeated keys."""

from __future__ import annotations

from fastapi import Request

from encord_sandbox.errors import InvalidArgument


def flag(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidArgument(f"query parameter {name}={value!r} is not a boolean")


def page_size(request: Request, default: int = 100) -> int:
    raw = request.query_params.get("pageSize", str(default))
    try:
        size = int(raw)
    except ValueError as exc:
        raise InvalidArgument(f"pageSize {raw!r} is not an integer") from exc
    if not 1 <= size <= 1000:
        raise InvalidArgument(f"pageSize {size} must be between 1 and 1000")
    return size


def order(request: Request) -> str:
    value = request.query_params.get("order", "name")
    if value not in ("name", "createdAt"):
        raise InvalidArgument(f"order {value!r} must be 'name' or 'createdAt'")
    return value
