"""Setup calls under chaos: folders, datasets and projects are created once, and items are linked once.

The SDK never retries these POSTs, and a create whose answer was lost has happened: a blind retry would make
a twin. Here every dropped connection comes *after* the handler ran (``lost_answer_routes`` covers every
request, not only job starts), at a high fault rate on every request, so creates regularly take effect and
lose their answer. Each test then counts what exists with chaos off, and checks from the log that a lost
answer was really settled by a lookup.

One sandbox serves the module (starting one is slow); each test arms a fresh chaos with the same seed, so the
faults it meets do not depend on which tests ran before it. Both retry layers are shortened so that a test at this
rate takes seconds: ours (``API_RETRY_POLICY``) and the SDK's own backoff (0, 3 and 6 s by default).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.exceptions import InvalidArgumentsError, RequestException, UnknownException
from encord.http.constants import RequestsSettings
from encord.orm.dataset import DatasetType
from encord.storage import StorageFolder
from encord_sandbox.chaos import Chaos, ChaosConfig, Fault
from encord_sandbox.server import Sandbox

from prefect_encord.jobs import api_retries
from prefect_encord.jobs.api_retries import create_once
from prefect_encord.planning.links import DuplicateBehaviour
from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.tasks.datasets import get_or_create_dataset, link_folder_to_dataset, link_items_to_dataset
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.projects import attach_datasets, get_or_create_project
from prefect_encord.testing import credentials_block

#: Six requests in ten misbehave: 503, 429 (Retry-After: 0) or a dropped connection, after the handler.
RATES = ChaosConfig(error_rate=0.2, throttle_rate=0.1, retry_after_seconds=0, drop_rate=0.3, lost_answer_routes=(".",))
#: At these rates, ten quick attempts all failing is a one-in-165 event for a call the SDK does not retry.
QUICK = RetryPolicy(max_attempts=10, backoff_seconds=0.02, max_backoff_seconds=0.2)
SEED = 5  # chosen so that the first create of each kind loses its answer
LOST = "the answer was lost, but it had taken effect"


class ArmedChaos(Chaos):
    """Chaos armed per test with a seed (:meth:`armed`) and off otherwise, so a test prepares and counts
    through the same sandbox without faults."""

    def __init__(self, config: ChaosConfig) -> None:
        super().__init__(config)
        self._armed: Chaos | None = None

    @contextmanager
    def armed(self, seed: int) -> Iterator[Chaos]:
        self._armed = Chaos(replace(self.config, seed=seed))
        try:
            yield self._armed
        finally:
            self._armed = None

    def draw(self, method: str, path: str) -> Fault | None:
        armed = self._armed
        return armed.draw(method, path) if armed is not None else None


@pytest.fixture(scope="module")
def chaotic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, ArmedChaos]]:
    sandbox = Sandbox(tmp_path_factory.mktemp("setup-chaos"), chaos=RATES)
    chaos = sandbox.backend.chaos = ArmedChaos(RATES)  # before start: the middleware wraps this one
    with sandbox:
        yield sandbox, chaos


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_retries, "API_RETRY_POLICY", QUICK)
    create = EncordUserClient.create_with_ssh_private_key
    quick_sdk = partial(create, requests_settings=RequestsSettings(backoff_factor=0.02))
    monkeypatch.setattr(EncordUserClient, "create_with_ssh_private_key", staticmethod(quick_sdk))


@pytest.fixture
def sandbox(chaotic: tuple[Sandbox, ArmedChaos]) -> Sandbox:
    return chaotic[0]


@pytest.fixture
def chaos(chaotic: tuple[Sandbox, ArmedChaos]) -> ArmedChaos:
    return chaotic[1]


@pytest.fixture
def clean(sandbox: Sandbox) -> EncordUserClient:
    """A client of the chaotic sandbox, for use while its chaos is not armed."""
    return sandbox.credentials().get_client()


def _token() -> str:
    return uuid.uuid4().hex[:8]


def _lost_answers(caplog: pytest.LogCaptureFixture, what: str) -> int:
    """How many creates matching ``what`` lost their answer and were found to have taken effect."""
    return sum(1 for r in caplog.records if LOST in r.getMessage() and re.search(what, r.getMessage()))


def _named(folders: Iterable[StorageFolder], name: str) -> list[str]:
    return [str(folder.uuid) for folder in folders if folder.name == name]


# --- create_once, on its own -------------------------------------------------------------------


def _lost_then(found: list[str | None]) -> tuple[Callable[[], str | None], Callable[[], str], list[str]]:
    """A ``find`` answering ``found`` in turn, and a ``create`` whose first answer is lost; the log of calls."""
    calls: list[str] = []
    answers = iter(found)

    def find() -> str | None:
        calls.append("find")
        return next(answers)

    def create() -> str:
        calls.append("create")
        if calls.count("create") == 1:
            raise RequestException("connection closed without response")
        return "made by the second create"

    return find, create, calls


def test_a_create_whose_answer_was_lost_is_found_not_sent_again() -> None:
    find, create, calls = _lost_then(["made by the first create"])

    assert create_once(find, create, "creating x") == "made by the first create"
    assert calls == ["create", "find"]


def test_a_create_that_did_not_take_effect_is_sent_again() -> None:
    find, create, calls = _lost_then([None])

    assert create_once(find, create, "creating x") == "made by the second create"
    assert calls == ["create", "find", "create"]


def test_a_refused_create_is_raised_at_once_without_a_lookup() -> None:
    calls: list[str] = []

    def find() -> str | None:
        calls.append("find")
        return None

    def create() -> str:
        calls.append("create")
        raise InvalidArgumentsError("title 'x' is not allowed")

    with pytest.raises(InvalidArgumentsError, match="title 'x' is not allowed"):
        create_once(find, create, "creating x")
    assert calls == ["create"]


def test_a_create_that_keeps_failing_raises_its_last_error() -> None:
    creates: list[int] = []

    def create() -> str:
        creates.append(1)
        raise UnknownException(f"503 number {len(creates)}")

    with pytest.raises(UnknownException, match="503 number 3"):
        create_once(lambda: None, create, "creating x", RetryPolicy(max_attempts=3, backoff_seconds=0))
    assert len(creates) == 3


# --- the setup tasks, against a chaotic sandbox ------------------------------------------------


def test_a_folder_path_is_created_once(
    sandbox: Sandbox, chaos: ArmedChaos, clean: EncordUserClient, caplog: pytest.LogCaptureFixture
) -> None:
    root = f"setup-{_token()}"

    with chaos.armed(SEED):
        made = get_or_create_folder.fn(credentials_block(sandbox), f"{root}/2026/cams", description="cameras")
        again = get_or_create_folder.fn(credentials_block(sandbox), f"{root}/2026/cams")

    [top] = _named(clean.list_storage_folders(search=root), root)
    [year] = _named(clean.get_storage_folder(top).list_subfolders(search="2026"), "2026")
    [cams] = _named(clean.get_storage_folder(year).list_subfolders(search="cams"), "cams")
    assert made == again == cams
    assert clean.get_storage_folder(cams).description == "cameras"
    assert _lost_answers(caplog, "creating .*folder") >= 2  # what this test is about did happen


def test_a_dataset_is_created_once(
    sandbox: Sandbox, chaos: ArmedChaos, clean: EncordUserClient, caplog: pytest.LogCaptureFixture
) -> None:
    title = f"setup {_token()}"

    with chaos.armed(SEED):
        made = get_or_create_dataset.fn(credentials_block(sandbox), title, description="for training")
        again = get_or_create_dataset.fn(credentials_block(sandbox), title)

    listed = [info["dataset"].dataset_hash for info in clean.get_datasets(title_eq=title)]
    assert listed == [made.dataset_hash] and again.dataset_hash == made.dataset_hash
    assert made.created and not again.created
    assert clean.get_dataset(made.dataset_hash, include_data_rows=False).description == "for training"
    assert _lost_answers(caplog, "creating dataset") >= 1


def test_a_project_is_created_once_and_each_dataset_attached_once(
    sandbox: Sandbox, chaos: ArmedChaos, clean: EncordUserClient, caplog: pytest.LogCaptureFixture
) -> None:
    title = f"setup {_token()}"
    first, second = (clean.create_dataset(f"ds-{_token()}", DatasetType.CORD_STORAGE).dataset_hash for _ in "12")

    with chaos.armed(SEED):
        made = get_or_create_project.fn(credentials_block(sandbox), title, dataset_hashes=[first])
        attached = attach_datasets.fn(credentials_block(sandbox), made.project_hash, [first, second])
        again = get_or_create_project.fn(credentials_block(sandbox), title, dataset_hashes=[first, second])

    assert [p.project_hash for p in clean.list_projects(title_eq=title)] == [made.project_hash]
    assert made.created and not again.created and again.project_hash == made.project_hash
    assert (attached.attached, attached.already_attached) == ([second], [first])
    assert (again.datasets.attached, again.datasets.already_attached) == ([], [first, second])
    listed = Counter(str(d.dataset_hash) for d in clean.get_project(made.project_hash).list_datasets())
    assert listed == {first: 1, second: 1}
    assert _lost_answers(caplog, "creating project") >= 1 and _lost_answers(caplog, "attaching") >= 1


@pytest.mark.parametrize("duplicates", ["SKIP", "FAIL", "DUPLICATE"])
def test_items_are_linked_once(
    sandbox: Sandbox,
    chaos: ArmedChaos,
    clean: EncordUserClient,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    duplicates: DuplicateBehaviour,
) -> None:
    folder = clean.create_storage_folder(f"setup-{_token()}")
    items = [str(folder.upload_text(_text(tmp_path, n))) for n in range(16)]
    dataset = clean.create_dataset(f"ds-{_token()}", DatasetType.CORD_STORAGE).dataset_hash

    with chaos.armed(SEED):
        result = link_items_to_dataset.fn(credentials_block(sandbox), dataset, items, duplicates, bundle_size=4)

    rows = clean.get_dataset(dataset).data_rows
    assert Counter(str(row.backing_item_uuid) for row in rows) == dict.fromkeys(items, 1)
    assert set(result.linked) == set(items) and result.failed == {} and result.already_present == {}
    assert set(result.linked.values()) == {row.uid for row in rows}
    assert _lost_answers(caplog, "linking") >= 1


def test_a_folder_is_linked_once_and_a_rerun_links_nothing(
    sandbox: Sandbox, chaos: ArmedChaos, clean: EncordUserClient, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    folder = clean.create_storage_folder(f"setup-{_token()}")
    items = [str(folder.upload_text(_text(tmp_path, n))) for n in range(12)]
    dataset = clean.create_dataset(f"ds-{_token()}", DatasetType.CORD_STORAGE).dataset_hash

    with chaos.armed(SEED):
        first = link_folder_to_dataset.fn(credentials_block(sandbox), dataset, str(folder.uuid), bundle_size=3)
        again = link_folder_to_dataset.fn(credentials_block(sandbox), dataset, str(folder.uuid), bundle_size=3)

    rows = clean.get_dataset(dataset).data_rows
    assert Counter(str(row.backing_item_uuid) for row in rows) == dict.fromkeys(items, 1)
    assert set(first.linked) == set(items) and first.failed == {}
    assert again.linked == {} and set(again.already_present) == set(items) and again.failed == {}
    assert _lost_answers(caplog, "linking") >= 1


def _text(directory: Path, n: int) -> Path:
    path = directory / f"note-{n:02d}.txt"
    path.write_text(f"note {n}\n")
    return path
