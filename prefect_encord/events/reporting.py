"""What a user sees of a run: a progress artifact, a summary and a table at the end, and events.

Flows report through one :class:`RunReport`. Inside a Prefect run it creates the artifacts (keys are
lowercase-dash, as Prefect requires) and emits events with the folder / dataset / project as related
resources, so automations can react ("labels exported for project X → train"). Outside a run (a task
called with ``.fn``) the artifact calls are skipped but listeners still hear the progress, which is
how the CLI draws its progress bar.

**Truth.** A run in which anything failed never ends green by default: :meth:`RunReport.final_state` makes it
Failed (red in the UI, counted on the dashboard, what default alerts watch), its message one paragraph: the
failures per kind of thing, where they are listed, and what to do next (for an ingest, the run id and the
rollback command). Only a run given a tolerance (``max_failures``) and staying within it ends "Completed with
failures" (a named COMPLETED state). Either way it emits :data:`~prefect_encord.events.names.RUN_FAILURES_EVENT`,
for an automation to alert on. Failures are logged at WARNING (the first :data:`_LOGGED_FAILURES` one by
one, then a count), so they stand out in the run's logs.

**Size.** A run over ten million files must not keep ten million rows, nor post them to the Prefect API
as one artifact. So a report counts every outcome but keeps only what a person reads: up to
:data:`MAX_FAILURE_ROWS` failures and the first :data:`MAX_OTHER_ROWS` other rows, and it says in the
summary how many it left out. The complete per-file record of an ingest is its item map (see
:mod:`prefect_encord.state.item_map`), whose path the summary names.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from prefect_encord.events import names as events
from prefect_encord.events.names import resource
from prefect_encord.runtime.run_logger import run_logger

logger = logging.getLogger(__name__)

#: Failures kept for the summary and the table; more are counted, not kept.
MAX_FAILURE_ROWS = 10_000
#: Other outcomes (created, skipped, linked, ...) kept for the table; more are counted, not kept.
MAX_OTHER_ROWS = 1_000
#: Failures listed in the markdown summary (the table holds up to MAX_FAILURE_ROWS).
_SUMMARY_FAILURES = 200
#: Failures logged one by one at WARNING; the rest are counted in one line at the end.
_LOGGED_FAILURES = 20
#: The name of the COMPLETED state of a run in which something failed.
COMPLETED_WITH_FAILURES = "Completed with failures"


class TooManyFailures(Exception):
    """A run had more failures than its ``max_failures`` tolerates (by default, any); ``result`` is what it did
    all the same.

    Calling the flow directly raises it; a CLI or a caller reads ``result`` to report the run.
    """

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message, result)
        self.result = result

    def __str__(self) -> str:
        return str(self.args[0])


class _OneLineForTooManyFailures(logging.Filter):
    """Prefect's engine, when a deployment's run ends Failed, logs the state's exception "exited with unexpected
    exception" with its whole traceback. A :class:`TooManyFailures` is no crash but the run's verdict, and its
    message already says everything: it is logged as one line, the run's state message, without the traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TooManyFailures):
            record.msg, record.args = "The run ended Failed: %s", (str(record.exc_info[1]),)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


for _engine_logger in ("prefect.engine", "prefect.flow_runs"):  # the worker's engine logs with either
    logging.getLogger(_engine_logger).addFilter(_OneLineForTooManyFailures())


def artifact_key(flow: str, subject: str) -> str:
    """A Prefect artifact key for ``flow`` about ``subject`` (a folder path, a project…), e.g.
    ``encord-ingest-cams-2026``: two pipelines' artifacts keep separate histories in the UI.

    Prefect allows lowercase letters, digits and dashes; the subject is cut to keep the key readable.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:48].strip("-")
    return f"{flow}-{slug}" if slug else flow


def check_max_failures(max_failures: int) -> None:
    """Refuse a negative ``max_failures`` before the run does anything."""
    if max_failures < 0:
        raise ValueError(f"max_failures must be 0 or more, not {max_failures}")


ProgressListener = Callable[[float, str], None]
_listeners: list[ProgressListener] = []


def add_progress_listener(listener: ProgressListener) -> Callable[[], None]:
    """Hear every run's progress (fraction 0–1, message) in this process; returns a function to stop."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


@dataclass
class Outcome:
    """One row of the run's table: what happened to a subject (a file, a group, a key…) in a step.

    ``step`` names the kind of thing counted ("files", "data groups", "metadata items"…), so that each
    count in the summary is of one kind. ``count`` lets one row stand for several things, e.g. a manifest
    that updated 4 items.
    """

    step: str
    subject: str
    status: str  # created | skipped | failed | linked | updated | exported | deleted
    detail: str = ""
    count: int = 1


#: The kinds of thing the flows count, one row each in a summary's table (and its failure message); every
#: flow that touches schema keys or metadata counts them under the same names.
FILES = "files"
SCHEMA_KEYS = "schema keys"
METADATA_ITEMS = "metadata items"
GROUPS = "data groups"
LINKS = "dataset items"
PROJECT = "project"

#: Column headings of the summary's count table, in order; statuses not listed follow in name order.
_STATUS_HEADINGS = {
    "created": "created",
    "updated": "updated",
    "linked": "linked",
    "attached": "attached",
    "exported": "exported",
    "deleted": "deleted",
    "skipped": "already there",
    "changed": "changed since ingested",
    "vanished": "deleted from the bucket",
    "not started": "not started",
    "left out": "left out",
    "kept": "kept",
    "failed": "failed",
}
#: Statuses that changed something, which the progress artifact's last words list.
_CHANGES = ("created", "updated", "linked", "attached", "exported", "deleted")


#: The least time between two updates of a step's progress, so a step of 10,000 jobs is not 10,000 API calls.
_PROGRESS_INTERVAL_SECONDS = 1.0


@dataclass
class StepProgress:
    """How far a step is, told from inside the task that does it (files done of total) to the run's progress
    artifact and listeners. It holds only the artifact's id and fractions, so it pickles: a task on a Dask
    worker updates the same artifact through the Prefect API."""

    artifact: UUID | None
    step: str
    start: float  # the fraction of the run done before this step
    span: float  # the fraction this step is worth
    _told: float = 0.0

    def tell(self, done: int, total: int | None, what: str, *, phase: int = 0, phases: int = 1) -> None:
        """``"ingest: 4,000 of 10,000 files sent"``, or with ``total`` None ``"ingest: 4,000 files registered so
        far"``; a step in ``phases`` parts (send, then settle) fills its share of the bar in that many turns.
        At most once a second, and always when ``done`` reaches ``total``."""
        now = time.monotonic()
        if done != total and now - self._told < _PROGRESS_INTERVAL_SECONDS:
            return
        self._told = now
        within = min(done / total, 1.0) if total else 0.0
        fraction = self.start + self.span * (phase + within) / phases
        message = f"{self.step}: {done:,} of {total:,} {what}" if total else f"{self.step}: {done:,} {what} so far"
        if self.artifact is not None:
            update_progress_artifact(self.artifact, fraction * 100, description=message)
        for listener in list(_listeners):
            listener(fraction, message)


@dataclass
class RunReport:
    """Progress, outcomes and events of one flow run."""

    title: str
    steps: Sequence[str]
    key: str = "encord-run"
    related: list[dict[str, str]] = field(default_factory=list)
    failures: list[Outcome] = field(default_factory=list)
    others: list[Outcome] = field(default_factory=list)
    #: step → status → count: the one source of every count the run reports.
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    _done: int = 0
    _artifact: UUID | None = None

    def __post_init__(self) -> None:
        if _in_flow_run():
            # Called from sync code, Prefect's sync-compatible API returns the UUID itself, not a coroutine.
            self._artifact = cast(
                UUID, create_progress_artifact(0.0, key=f"{self.key}-progress", description=self.title)
            )

    def step_done(self, step: str, message: str) -> None:
        """Mark a step finished and tell the UI, the log and any listener."""
        self._done += 1
        fraction = min(self._done / max(len(self.steps), 1), 1.0)
        logger.info("%s: %s", step, message)
        if self._artifact is not None:
            update_progress_artifact(self._artifact, fraction * 100, description=f"{step}: {message}")
        for listener in list(_listeners):
            listener(fraction, f"{step}: {message}")

    def step_progress(self, step: str) -> StepProgress:
        """A handle for the task doing the next step to tell how far it is."""
        steps = max(len(self.steps), 1)
        return StepProgress(self._artifact, step, min(self._done / steps, 1.0), 1 / steps)

    def record(self, outcomes: Iterable[Outcome]) -> None:
        """Count each outcome; keep it for the table while there is room (see the module on size)."""
        for outcome in outcomes:
            if outcome.count == 0:  # e.g. "0 rows unchanged": nothing to count or list
                continue
            by_status = self.counts.setdefault(outcome.step, {})
            by_status[outcome.status] = by_status.get(outcome.status, 0) + outcome.count
            if outcome.status == "failed" and self.failed <= _LOGGED_FAILURES:
                run_logger(__name__).warning("%s failed: %s: %s", outcome.step, outcome.subject, outcome.detail)
            kept = self.failures if outcome.status == "failed" else self.others
            if len(kept) < (MAX_FAILURE_ROWS if outcome.status == "failed" else MAX_OTHER_ROWS):
                kept.append(outcome)

    def count(self, step: str, status: str) -> int:
        """How many ``status`` outcomes ``step`` recorded (e.g. ``count("files", "created")``)."""
        return self.counts.get(step, {}).get(status, 0)

    @property
    def totals(self) -> dict[str, int]:
        """status → count over every step."""
        totals: dict[str, int] = {}
        for by_status in self.counts.values():
            for status, count in by_status.items():
                totals[status] = totals.get(status, 0) + count
        return totals

    def relate(self, kind: str, identifier: str, name: str | None = None) -> None:
        """Name an Encord object the run touched; every event of the run will point at it."""
        entry = resource(kind, identifier, name)
        if entry not in self.related:
            self.related.append(entry)

    def emit(self, event: str, subject: dict[str, str], payload: Mapping[str, Any]) -> None:
        """Emit ``event`` (see :mod:`~prefect_encord.events.names`) about ``subject``, related to what it touched."""
        related = [r for r in self.related if r["prefect.resource.id"] != subject["prefect.resource.id"]]
        emit_event(event, resource=subject, related=related or None, payload=dict(payload))

    def finish(self, summary_lines: Sequence[str]) -> str:
        """Publish the markdown summary and the table (failures first); returns the markdown.

        Every count the summary shows comes from :attr:`counts`, one row per kind of thing, so its numbers
        cannot disagree with each other, nor with what the flow returns (built from the same counts).
        """
        lines = [f"# {self.title}", "", *summary_lines, "", *self._count_table()]
        failed = self.failed
        if failed:
            lines += ["", "## Failures", "", "| step | subject | error |", "|---|---|---|"]
            lines += [
                f"| {o.step} | {_cell(o.subject)} | {_cell(o.detail)} |" for o in self.failures[:_SUMMARY_FAILURES]
            ]
            if failed > _SUMMARY_FAILURES:
                lines.append(f"| … | {failed - _SUMMARY_FAILURES:,} more failures; the table artifact lists "
                             f"{min(failed, MAX_FAILURE_ROWS):,} in all | |")  # fmt: skip
        rows = len(self.failures) + len(self.others)
        left_out = sum(self.totals.values()) - sum(o.count for o in (*self.failures, *self.others))
        if left_out > 0:
            lines += ["", f"The table lists every failure up to {MAX_FAILURE_ROWS:,} and the first {MAX_OTHER_ROWS:,} "
                          f"other outcomes; {left_out:,} more are counted above, not listed."]  # fmt: skip
        markdown = "\n".join(lines)
        ending = self.ending()
        if _in_flow_run():
            create_markdown_artifact(markdown, key=f"{self.key}-summary", description=self.title)
            if rows:  # an empty table artifact shows as a stray dot in the UI
                create_table_artifact(
                    [
                        {"step": o.step, "subject": o.subject, "status": o.status, "detail": o.detail}
                        for o in (*self.failures, *self.others)
                    ],
                    key=f"{self.key}-outcomes",
                    description=f"{self.title}: failures first, then the other steps and files",
                )
            if self._artifact is not None:
                update_progress_artifact(self._artifact, 100.0, description=ending)
        for listener in list(_listeners):
            listener(1.0, ending)
        if failed:
            run_logger(__name__).warning("%s: %s", self.title, self.failure_message())
        return markdown

    def ending(self) -> str:
        """The progress artifact's last words: ``"finished: 8 files created, 2 data groups created; 1 failure"``."""
        parts = [
            f"{count:,} {step} {_STATUS_HEADINGS.get(status, status)}"
            for step, by_status in self.counts.items()
            for status, count in by_status.items()
            if status in _CHANGES and count
        ]
        failed = f"; {self.failed:,} {'failure' if self.failed == 1 else 'failures'}" if self.failed else ""
        return f"finished: {', '.join(parts) or 'nothing to change'}{failed}"

    def _count_table(self) -> list[str]:
        """One row per kind of thing (files, data groups, metadata items…), one column per status."""
        if not self.counts:
            return ["Nothing was recorded."]
        statuses = sorted(
            {status for by_status in self.counts.values() for status in by_status},
            key=lambda status: (list(_STATUS_HEADINGS).index(status) if status in _STATUS_HEADINGS else 99, status),
        )
        lines = [
            "| | " + " | ".join(_STATUS_HEADINGS.get(status, status) for status in statuses) + " |",
            "|---|" + "---|" * len(statuses),
        ]
        for step, by_status in self.counts.items():
            lines.append(f"| {step} | " + " | ".join(f"{by_status.get(status, 0):,}" for status in statuses) + " |")
        return lines

    @property
    def failed(self) -> int:
        return sum(by_status.get("failed", 0) for by_status in self.counts.values())

    def failure_message(self) -> str:
        """``"3 failures (2 in upload, 1 in metadata); listed in …"``, or "" when nothing failed."""
        if not self.failed:
            return ""
        by_step = ", ".join(
            f"{by_status['failed']:,} in {step}" for step, by_status in self.counts.items() if by_status.get("failed")
        )
        noun = "failure" if self.failed == 1 else "failures"
        return f"{self.failed:,} {noun} ({by_step}); listed in the '{self.key}-outcomes' table artifact"

    def final_state(self, result: Any, max_failures: int = 0, next_step: str = "") -> State[Any]:
        """The state the run ends in: Completed; Failed when more than ``max_failures`` things failed (by
        default, any); else "Completed with failures". A failing run's message is one paragraph, ending in
        ``next_step`` (what to do about it), and the run emits :data:`~prefect_encord.events.names.RUN_FAILURES_EVENT`.
        """
        if not self.failed:
            return Completed(data=result)
        tolerated = max_failures > 0 and self.failed <= max_failures
        if max_failures > 0:
            within = "within" if tolerated else "more than"
            limit = f" ({within} max_failures={max_failures})"
        else:
            limit = " (max_failures=0: any failure fails the run)"
        message = " ".join(part for part in (f"{self.failure_message()}{limit}.", next_step) if part)
        state_name = COMPLETED_WITH_FAILURES if tolerated else "Failed"
        if _in_flow_run() and self.related:
            self.emit(
                events.RUN_FAILURES_EVENT,
                self.related[0],
                {"failures": self.failed, "by_kind": {step: by_status["failed"] for step, by_status in
                                                      self.counts.items() if by_status.get("failed")},
                 "state": state_name, "message": message, "flow_run_id": str(flow_run.get_id() or "")},
            )  # fmt: skip
        if tolerated:
            return Completed(data=result, name=COMPLETED_WITH_FAILURES, message=message)
        return Failed(data=TooManyFailures(message, result), message=message)


def count_lines(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """``["files: 8 created, 1 failed", "data groups: 2 created"]``: a report's counts as plain lines (the CLI's)."""
    return [
        f"{step}: " + ", ".join(f"{n:,} {_STATUS_HEADINGS.get(status, status)}" for status, n in by_status.items())
        for step, by_status in counts.items()
    ]


def _in_flow_run() -> bool:
    return FlowRunContext.get() is not None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]
