"""Chaos mode itself: each fault does what it says, nothing it refuses took effect, and a seed reproduces it."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from encord.exceptions import RequestException, UnknownException
from encord_sandbox import samples
from encord_sandbox.chaos import STATS_PATH, Chaos, ChaosConfig
from encord_sandbox.cli import _chaos, build_parser, chaos_arguments

from prefect_encord.runtime import crashpoints
from tests.chaos.conftest import ChaoticSandbox, new_folder

FOLDER_CREATE = r"^POST /v2/public/storage/folders$"
JOB_START = r"/data-upload-jobs$"


def _stats(domain: str) -> dict[str, object]:
    return dict(httpx.get(domain + STATS_PATH).json())


def test_a_refused_request_had_no_effect(chaotic_sandbox: ChaoticSandbox) -> None:
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, error_rate=1.0, routes=(FOLDER_CREATE,), max_faults=1))
    client = sandbox.credentials().get_client()
    name = f"refused-{uuid.uuid4().hex[:6]}"

    with pytest.raises(UnknownException, match="sandbox chaos: service temporarily unavailable"):
        client.create_storage_folder(name)  # the SDK never retries this POST

    assert [f.name for f in client.find_storage_folders(search=name)] == []
    client.create_storage_folder(name)  # the fault budget is spent: served normally
    assert [f.name for f in client.find_storage_folders(search=name)] == [name]
    assert _stats(sandbox.domain)["faults"] == {"error": 1}


def test_a_throttled_answer_says_when_to_come_back(chaotic_sandbox: ChaoticSandbox) -> None:
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, throttle_rate=1.0, retry_after_seconds=7, max_faults=1))

    answer = httpx.put(f"{sandbox.domain}/_blobs/anything", content=b"bytes")

    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
    assert "rate limit" in answer.json()["message"]
    assert httpx.put(f"{sandbox.domain}/_blobs/anything", content=b"x").status_code == 403  # unsigned: refused


def test_a_dropped_job_start_started_the_job_but_lost_its_answer(
    chaotic_sandbox: ChaoticSandbox, tmp_path: Path
) -> None:
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, drop_rate=1.0, routes=(JOB_START,), max_faults=1))
    (tmp_path / "a.txt").write_bytes(samples.text("a"))
    sandbox.add_integration("local", "local", root=str(tmp_path))
    client, folder = new_folder(sandbox)
    integration = str(client.get_cloud_integrations()[0].id)

    with pytest.raises(RequestException, match="session.send failed"):
        folder.add_private_data_to_folder_start(integration, {"text": [{"objectUrl": f"file://{tmp_path}/a.txt"}]})

    jobs = sandbox.backend.store.query("SELECT uuid FROM jobs WHERE folder = ?", (str(folder.uuid),))
    assert len(jobs) == 1  # the nasty case: the client cannot tell the job started
    assert _stats(sandbox.domain)["faults"] == {"lost_answer": 1}


def test_a_dropped_read_is_retried_by_the_sdk_and_a_slow_one_only_waits(chaotic_sandbox: ChaoticSandbox) -> None:
    folder_get = r"^GET /v2/public/storage/folders/\{id\}$"
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, slow_rate=0.5, drop_rate=0.5, slow_seconds=0.3, routes=(folder_get,)))
    client, folder = new_folder(sandbox)

    for _ in range(6):
        assert client.get_storage_folder(folder.uuid).name == folder.name

    stats = _stats(sandbox.domain)
    faults = stats["faults"]
    assert isinstance(faults, dict) and set(faults) == {"drop", "slow"}
    assert stats["covered"] == 6 + faults["drop"]  # every drop was retried once more


def test_unsigned_routes_and_spared_blobs_are_never_touched(chaotic_sandbox: ChaoticSandbox) -> None:
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, error_rate=1.0, include_blobs=False))

    assert httpx.get(f"{sandbox.domain}/healthz").status_code == 200
    assert httpx.put(f"{sandbox.domain}/_blobs/anything", content=b"x").status_code == 403  # the app's own answer
    assert httpx.get(f"{sandbox.domain}/v2/public/storage/folders").status_code == 503
    assert _stats(sandbox.domain)["covered"] == 1


def test_failed_units_fail_once_with_a_transient_error(chaotic_sandbox: ChaoticSandbox, tmp_path: Path) -> None:
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, unit_failure_rate=1.0))
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_bytes(samples.text(name))
    sandbox.add_integration("local", "local", root=str(tmp_path))
    client, folder = new_folder(sandbox)
    integration = str(client.get_cloud_integrations()[0].id)
    spec = {"text": [{"objectUrl": f"file://{tmp_path}/{name}"} for name in ("a.txt", "b.txt")]}

    first = folder.add_private_data_to_folder_get_result(folder.add_private_data_to_folder_start(integration, spec))
    again = folder.add_private_data_to_folder_get_result(folder.add_private_data_to_folder_start(integration, spec))

    assert [e.error.split(": ", 1)[1] for e in first.unit_errors] == [
        "timed out reading the object from storage (sandbox chaos: a transient fault); registering it again will "
        "succeed"
    ] * 2
    assert first.items_with_names == [] and len(again.items_with_names) == 2 and again.unit_errors == []


def test_a_timed_out_long_poll_answers_at_once_and_the_sdk_polls_again(
    chaotic_sandbox: ChaoticSandbox, tmp_path: Path
) -> None:
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, poll_timeout_rate=1.0, max_faults=3))
    (tmp_path / "a.png").write_bytes(samples.png())
    sandbox.add_integration("local", "local", root=str(tmp_path))
    client, folder = new_folder(sandbox)
    integration = str(client.get_cloud_integrations()[0].id)

    job = folder.add_private_data_to_folder_start(integration, {"images": [{"objectUrl": f"file://{tmp_path}/a.png"}]})
    state = folder.add_private_data_to_folder_get_result(job)

    assert state.status.value == "DONE" and len(state.items_with_names) == 1
    spent = _stats(sandbox.domain)["faults"]
    assert isinstance(spent, dict) and spent["poll_timeout"] >= 1
    waits = []
    for _ in range(4 - spent["poll_timeout"]):  # the last wait is past the budget of 3: it holds
        started = time.perf_counter()
        sandbox.backend.runner.wait(lambda: False, timeout=0.5)
        waits.append(time.perf_counter() - started)
    assert all(wait < 0.1 for wait in waits[:-1]) and waits[-1] >= 0.5


def test_a_seed_reproduces_the_faults_of_each_stream() -> None:
    config = ChaosConfig(seed=7, error_rate=0.1, throttle_rate=0.1, drop_rate=0.1, slow_rate=0.1)

    def faults(chaos: Chaos) -> list[str | None]:
        draws = [chaos.draw("GET", f"/v2/public/storage/folders/{uuid.uuid4()}") for _ in range(2000)]
        return [fault.kind if fault else None for fault in draws]

    first, second = faults(Chaos(config)), faults(Chaos(config))
    assert first == second  # ids differ between runs; the stream (path with ids as {id}) does not
    assert first != faults(Chaos(ChaosConfig(seed=8, error_rate=0.1, throttle_rate=0.1, drop_rate=0.1, slow_rate=0.1)))
    for kind in ("error", "throttle", "drop", "slow"):
        assert 140 <= first.count(kind) <= 260  # 10 % of 2,000, give or take
    units = ChaosConfig(seed=7, unit_failure_rate=0.3)
    failing = [key for key in map(str, range(1000)) if Chaos(units).unit_failure(key)]
    assert failing == [key for key in map(str, range(1000)) if Chaos(units).unit_failure(key)]
    assert 240 <= len(failing) <= 360


def test_a_job_start_drop_comes_after_the_handler_and_every_other_drop_before() -> None:
    chaos = Chaos(ChaosConfig(seed=1, drop_rate=1.0))
    start = chaos.draw("POST", f"/v2/public/storage/folders/{uuid.uuid4()}/data-upload-jobs")
    poll = chaos.draw("GET", f"/v2/public/storage/folders/{uuid.uuid4()}/data-upload-jobs/{uuid.uuid4()}")
    assert start is not None and start.after_handler
    assert poll is not None and not poll.after_handler


def test_lost_answer_routes_choose_which_drops_come_after_the_handler() -> None:
    create = ("POST", "/v2/public/storage/folders")
    start = ("POST", f"/v2/public/storage/folders/{uuid.uuid4()}/data-upload-jobs")
    every = Chaos(ChaosConfig(seed=1, drop_rate=1.0, lost_answer_routes=(r"^POST ",)))
    none = Chaos(ChaosConfig(seed=1, drop_rate=1.0, lost_answer_routes=()))
    assert [every.draw(*request).after_handler for request in (create, start)] == [True, True]
    assert [none.draw(*request).after_handler for request in (create, start)] == [False, False]
    with pytest.raises(ValueError, match=r"chaos route '\(unclosed' is not a regular expression"):
        ChaosConfig(lost_answer_routes=("(unclosed",))
    with pytest.raises(SystemExit):  # either some routes lose answers, or none
        build_parser().parse_args(
            ["sandbox", "serve", "--chaos-lost-answer-route", "^POST ", "--chaos-no-lost-answers"]
        )


@pytest.mark.parametrize(
    "rates",
    [{"error_rate": 1.5}, {"unit_failure_rate": -0.1}, {"error_rate": 0.6, "drop_rate": 0.6}, {"slow_seconds": -1}],
)
def test_impossible_settings_are_refused(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="chaos"):
        ChaosConfig(**rates)  # type: ignore[arg-type]


def test_serve_flags_turn_on_exactly_the_config() -> None:
    config = ChaosConfig(
        seed=3, error_rate=0.05, throttle_rate=0.02, retry_after_seconds=2, drop_rate=0.01, slow_rate=0.01,
        slow_seconds=0.5, unit_failure_rate=0.01, poll_timeout_rate=0.2, routes=("^GET ",), include_blobs=False,
        max_faults=9,
    )  # fmt: skip
    arguments = build_parser().parse_args(["serve", *chaos_arguments(config)])
    assert _chaos(arguments) == config
    assert _chaos(build_parser().parse_args(["serve"])) is None
    for lost in [(), (r"^POST ", r"^PATCH ")]:
        config = ChaosConfig(seed=1, drop_rate=0.5, lost_answer_routes=lost)
        assert _chaos(build_parser().parse_args(["serve", *chaos_arguments(config)])) == config


def test_a_config_without_rates_only_counts(chaotic_sandbox: ChaoticSandbox) -> None:
    sandbox = chaotic_sandbox(ChaosConfig())
    for _ in range(5):
        assert httpx.get(f"{sandbox.domain}/v2/public/storage/folders").status_code == 401  # unsigned, untouched
    assert _stats(sandbox.domain) == {"seed": 0, "requests": 5, "transfers": 0, "covered": 5, "faults": {}}


def test_a_crash_point_fires_on_its_nth_visit_only(monkeypatch: pytest.MonkeyPatch) -> None:
    died: list[str] = []
    monkeypatch.setattr(crashpoints, "_die", died.append)
    monkeypatch.setattr(crashpoints, "_reached", Counter())
    monkeypatch.delenv(crashpoints.CRASH_AT_ENV, raising=False)
    crashpoints.crash_point("job.after-start")  # unset: nothing
    monkeypatch.setenv(crashpoints.CRASH_AT_ENV, "job.after-start:2")
    for point in ("job.after-start", "job.before-start", "job.after-start", "job.after-start"):
        crashpoints.crash_point(point)
    assert died == ["job.after-start"]
    monkeypatch.setenv(crashpoints.CRASH_AT_ENV, "job.after-strat")
    with pytest.raises(KeyError, match="unknown crash point 'job.after-strat'"):
        crashpoints.crash_point("job.after-start")
