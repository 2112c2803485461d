"""When and how long to retry: a PUT to a signed upload URL, or a request to Encord's API (pure)."""

from __future__ import annotations

from dataclasses import dataclass

_RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transfers to object storage.

    Object stores answer bursts of parallel PUTs with the odd 503 or 429 and drop the odd connection;
    those are retried, everything else (403 for an expired or wrong signature, 400) fails at once because
    repeating it cannot help. Jitter spreads the retries of concurrent transfers so they do not collide again.
    """

    max_attempts: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts {self.max_attempts} must be at least 1")
        if self.backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("backoff times cannot be negative")

    @staticmethod
    def retryable(status: int) -> bool:
        """Whether an HTTP status is worth another attempt: timeouts, throttling and server errors."""
        return status in _RETRYABLE_STATUSES or status >= 500

    def delay(self, attempt: int, jitter: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``jitter`` in [0, 1) scales it
        between half and the full exponential step."""
        step = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return step * (0.5 + jitter / 2)

    def wait(self, attempt: int, jitter: float, retry_after: float | str | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt``: the backoff, or the server's ``Retry-After`` when it
        asks for longer (seconds, as a number or as the header's digits; an HTTP date is not waited for).

        The one Retry-After rule, for PUTs (the header) and API calls (the SDK's ``RateLimitExceededError``)."""
        if isinstance(retry_after, str):
            retry_after = float(retry_after) if retry_after.isdigit() else None
        return max(self.delay(attempt, jitter), retry_after or 0.0)
