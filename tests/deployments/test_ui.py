"""What a person sees in the Prefect UI, in a real browser: Debian's Chromium driven by Playwright.

The ingest deployment's Custom Run page must be a form (tabs to choose a local or cloud source, a text
field for the directory and the grouping pattern, a block picker for the credentials and for the cloud
block), never a JSON editor; a run submitted from that form must complete and show its artifacts.
Screenshots of each page are written to ``build/ui-screenshots/`` for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefect_encord.events.names import RUN_FAILURES_EVENT
from prefect_encord.events.reporting import COMPLETED_WITH_FAILURES, artifact_key

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is installed by the dev extra")
expect = playwright.expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "ui-screenshots"
#: Debian's Chromium (``apt-get install chromium``, which ``make test`` does where it can); Playwright's own
#: browser download cannot run offline.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Without the background-networking flags Chromium keeps dialling Google's hosts, which this closed network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A parameter the UI could not render as a form: its JSON editor.
JSON_EDITOR = ".schema-form-property .p-code-input, .schema-form-property-kind-json"


@pytest.fixture(scope="module")
def page(stack: dict[str, Any]) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package (make test does, as root)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def _deployment(stack: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(httpx.get(f"{stack['api']}/deployments/name/{name}").json())


def _property(page: Any, label: str) -> Any:
    """The form property whose label is exactly ``label`` (the innermost one, for nested models)."""
    return (
        page.locator(".schema-form-property")
        .filter(has=page.locator(".schema-form-property__label", has_text=label))
        .last
    )


def test_the_ingest_form_is_a_form_not_a_json_editor(stack: dict[str, Any], page: Any) -> None:
    deployment = _deployment(stack, "encord-ingest/ingest-directory")
    page.goto(f"{stack['ui']}/deployments/deployment/{deployment['id']}/run", wait_until="networkidle")
    page.get_by_text("Parameters", exact=True).wait_for()
    page.screenshot(path=SCREENSHOTS / "ingest-custom-run-local.png", full_page=True)

    assert page.locator(JSON_EDITOR).count() == 0
    # The source: a choice of two forms, the local one filled with the deployment's directory.
    assert page.get_by_role("button", name="Local directory", exact=True).is_visible()
    directory = _property(page, "Directory").locator("textarea, input").first
    assert directory.input_value().endswith(".prefect-encord/example/media")
    # The grouping rule: a pattern field, with the layout's choice of grid / carousel / custom.
    pattern = _property(page, "Pattern").locator("textarea, input").first
    assert pattern.input_value() == r"(?P<key>scene-\d+)_(?P<role>front|rear)"
    for layout in ("Grid or carousel", "Custom layout file"):  # titles, not class names
        assert page.get_by_role("button", name=layout, exact=True).is_visible()
    # The credentials: Prefect's block picker.
    assert _property(page, "credentials").locator(".schema-form-property-block-document").count() == 1

    page.get_by_role("button", name="Bucket", exact=True).click()
    block = _property(page, "Block")
    block.locator(".schema-form-property-block-document").wait_for()
    page.screenshot(path=SCREENSHOTS / "ingest-custom-run-cloud.png", full_page=True)
    # Prefect's server checks a block reference against the definition keyed by the block schema's title, which
    # must stay its class name (prefect/utilities/schema_tools/validation.py): the tabs show class names.
    # Class names, as Prefect's UI titles a block type's tab by its schema's title, which must stay the class name
    # (Prefect's server finds a block reference's definition by that title), and ignores a title beside a $ref.
    for block_type in ("EncordS3Integration", "EncordGcsIntegration", "EncordAzureIntegration"):
        assert block.get_by_role("button", name=block_type).is_visible()
    assert page.locator(JSON_EDITOR).count() == 0
    page.get_by_role("button", name="Local directory", exact=True).click()


def test_a_run_submitted_from_the_form_completes_and_shows_its_artifacts(stack: dict[str, Any], page: Any) -> None:
    deployment = _deployment(stack, "encord-ingest/ingest-directory")
    _wait_until_idle(stack)  # the other tests' runs write to the server's SQLite too
    run = _finished_run(stack, _submit(stack, deployment["id"], page))
    assert run["state_type"] == "COMPLETED", stack["processes"].logs()
    # The form sent the credentials as the deployment's reference to the saved block, never the key.
    assert run["parameters"]["credentials"] == {"$ref": {"block_document_id": stack["credentials_id"]}}

    page.goto(f"{stack['ui']}/runs/flow-run/{run['id']}", wait_until="networkidle")
    page.get_by_role("tab", name="Artifacts").or_(page.get_by_text("Artifacts", exact=True)).first.click()
    key = artifact_key("encord-ingest", run["parameters"]["folder_path"])  # one history per folder
    page.get_by_text(f"{key}-summary").first.wait_for()
    page.screenshot(path=SCREENSHOTS / "ingest-run-artifacts.png", full_page=True)
    for artifact in ("summary", "outcomes", "progress"):
        assert page.get_by_text(f"{key}-{artifact}").first.is_visible()
    # The summary reads as a person would want: names next to ids, one count per kind of thing.
    body = {"artifacts": {"key": {"any_": [f"{key}-summary"]}, "flow_run_id": {"any_": [run["id"]]}}}
    (summary,) = httpx.post(f"{stack['api']}/artifacts/filter", json=body).json()
    page.goto(f"{stack['ui']}/artifacts/artifact/{summary['id']}", wait_until="networkidle")
    page.get_by_text("dataset items").first.wait_for()
    page.screenshot(path=SCREENSHOTS / "ingest-run-summary.png", full_page=True)
    text = page.locator("body").inner_text()
    assert "examples/prefect-encord" in text and "prefect-encord example" in text
    for kind in ("files", "schema keys", "metadata items", "data groups", "dataset items", "project"):
        assert kind in text


def _with_a_corrupt_file(stack: dict[str, Any], tmp_path: Path) -> Path:
    """The bundled example's media (so its manifest and groups still fit) and one PNG that is no image."""
    media = tmp_path / "media"
    shutil.copytree(stack["workdir"] / ".prefect-encord" / "example" / "media", media)
    (media / "corrupt.png").write_bytes(b"not an image at all")
    return media


def _fill(media: Path, folder: str, max_failures: int | None = None) -> Any:
    """What a person types into the ingest form: another directory, a new folder, and maybe a tolerance."""

    def fill(page: Any) -> None:
        _property(page, "Directory").locator("textarea, input").first.fill(str(media))
        _property(page, "folder_path").locator("textarea, input").first.fill(folder)
        if max_failures is not None:
            _property(page, "max_failures").locator("input").first.fill(str(max_failures))

    return fill


def _run_with_a_corrupt_file(
    stack: dict[str, Any], page: Any, tmp_path: Path, max_failures: int | None = None
) -> tuple[dict[str, Any], str]:
    """The finished run of the ingest form submitted over a directory with one corrupt file, into a new folder."""
    deployment = _deployment(stack, "encord-ingest/ingest-directory")
    _wait_until_idle(stack)
    folder = f"ui/corrupt-{uuid.uuid4().hex[:6]}"
    fill = _fill(_with_a_corrupt_file(stack, tmp_path), folder, max_failures)
    return _finished_run(stack, _submit(stack, deployment["id"], page, fill)), folder


def test_a_run_with_a_corrupt_file_is_red_and_says_how_to_undo_it(
    stack: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    run, _ = _run_with_a_corrupt_file(stack, page, tmp_path)

    assert (run["state_type"], run["state_name"]) == ("FAILED", "Failed"), stack["processes"].logs()
    message = run["state"]["message"]
    assert message.startswith("1 failure (1 in files)") and f"prefect-encord rollback {run['id']}" in message
    page.goto(f"{stack['ui']}/runs/flow-run/{run['id']}", wait_until="networkidle")
    page.get_by_text("Failed", exact=True).first.wait_for()
    page.screenshot(path=SCREENSHOTS / "ingest-run-failed.png", full_page=True)
    assert "Traceback" not in page.locator("body").inner_text()


def test_a_tolerated_failure_completes_with_failures_and_its_event_is_in_the_feed(
    stack: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    run, folder = _run_with_a_corrupt_file(stack, page, tmp_path, max_failures=1)

    assert (run["state_type"], run["state_name"]) == ("COMPLETED", COMPLETED_WITH_FAILURES), stack["processes"].logs()
    body = {"filter": {"event": {"name": [RUN_FAILURES_EVENT]},
                       "any_resource": {"id": [f"prefect.flow-run.{run['id']}"]}}, "limit": 5}  # fmt: skip
    deadline, events = time.monotonic() + 60, list[dict[str, Any]]()
    while not events and time.monotonic() < deadline:  # events reach the server a little after the run ends
        events = httpx.post(f"{stack['api']}/events/filter", json=body).json()["events"]
        time.sleep(0 if events else 1)
    (event,) = events
    assert event["payload"]["state"] == COMPLETED_WITH_FAILURES and event["payload"]["by_kind"] == {"files": 1}
    # The event's page in the UI's feed. Prefect's UI names only its own kinds of resource (flow runs,
    # deployments…) and shows others by id; the folder's name is in the event, on its Raw tab.
    page.goto(f"{stack['ui']}/events/event/{event['occurred'][:10]}/{event['id']}", wait_until="networkidle")
    page.get_by_text(RUN_FAILURES_EVENT).first.wait_for()
    page.screenshot(path=SCREENSHOTS / "event-run-failures.png", full_page=True)
    page.get_by_role("tab", name="Raw").or_(page.get_by_text("Raw", exact=True)).first.click()
    expect(page.locator("body")).to_contain_text(f'"prefect.resource.name": "{folder}"')


#: Labels that are a class's or a type's name, never what a person reads. (Prefect's UI labels "not given" None;
#: an optional list or time still shows its type's name, which this does not yet refuse.)
CLASS_NAMES = re.compile(r"^(LocalSource|CloudSource|KeyPattern|GroupsFile|RolesLayout|GridLayout|CarouselLayout|"
                         r"CustomLayout|MetadataStep|GroupingStep|DatasetStep|LocalDestination|CloudDestination|"
                         r"LabelRowFilters|str|int|bool)$")  # fmt: skip


def test_every_deployments_form_is_a_form_with_the_credentials_picker_filled(stack: dict[str, Any], page: Any) -> None:
    deployments = httpx.post(f"{stack['api']}/deployments/filter", json={}).json()
    assert len(deployments) >= 8
    for deployment in deployments:
        page.goto(f"{stack['ui']}/deployments/deployment/{deployment['id']}/run", wait_until="networkidle")
        page.get_by_text("Parameters", exact=True).wait_for()
        name = deployment["name"]
        picker = _property(page, "credentials")
        expect(picker).to_contain_text("encord")  # the default block, shown by name
        tabs = page.locator(".schema-form-property .p-button-group__button")  # the tabs of every choice
        labels: list[str] = []
        clicked: set[tuple[int, str]] = set()
        for _ in range(6):  # every view a person can reach by its tabs, those a click reveals included
            labels = [tabs.nth(i).inner_text().strip() for i in range(tabs.count())]
            todo = [(i, label) for i, label in enumerate(labels) if (i, label) not in clicked and label
                    and label != "None" and not label.startswith(("Add", "Remove"))]  # None only hides  # fmt: skip
            if not todo:
                break
            for index, label in todo:
                clicked.add((index, label))
                if tabs.nth(index).is_visible():
                    try:
                        tabs.nth(index).click(timeout=15_000)
                    except playwright.Error as stuck:
                        raise AssertionError(f"{name}: the page hangs on the {label!r} tab") from stuck
                    assert page.locator(JSON_EDITOR).count() == 0, f"{name}: a JSON box behind the {label!r} tab"
                    assert not page.get_by_text("is a const").count(), f"{name}: a constant behind the {label!r} tab"
        if name == "ingest-directory":  # the walk reached the nested choices too
            assert {"Bucket", "Groups file", "Custom layout file"} <= {label for _, label in clicked}, clicked
        page.screenshot(path=SCREENSHOTS / f"form-{name}.png", full_page=True)
        headings = page.locator(".schema-form-property__label").all_inner_texts()
        shown = [text.replace("(Optional)", "").strip() for text in [*headings, *labels]]
        assert not [text for text in shown if CLASS_NAMES.match(text)], f"{name}: class names as labels: {shown}"


def _open_form(stack: dict[str, Any], deployment_id: str, page: Any) -> None:
    """The deployment's Custom Run page, once the form holds the deployment's values: its directory, and the
    credentials block the picker looks up by id (a Submit before either is in does nothing)."""
    page.goto(f"{stack['ui']}/deployments/deployment/{deployment_id}/run", wait_until="networkidle")
    expect(_property(page, "Directory").locator("textarea, input").first).to_have_value(re.compile("example/media$"))
    expect(_property(page, "credentials")).to_contain_text("encord")


def _submit(stack: dict[str, Any], deployment_id: str, page: Any, fill: Any = None, attempts: int = 5) -> str:
    """Open the form, let ``fill(page)`` change it, and submit it until the server has created a flow run (its
    word, not the page's URL, which a busy browser may take long to change); returns the new run's id.

    The local server answers 503 when its SQLite is busy (Prefect's own clients retry those; its UI shows
    "Oops"); then, once the server is quiet, the form is opened afresh and sent again, as a person would. A
    creation the server took (2xx) is never sent again, so at most one run is made. With no run in the end,
    say what the page showed and what the server answered.
    """
    errors: list[str] = []
    sent: list[str] = []  # every answer to a run's creation, for the message when none came

    def heard(response: Any) -> None:
        if response.status >= 500:
            errors.append(f"{response.status} {response.request.method} {response.url}")
        if "create_flow_run" in response.url:
            sent.append(f"{response.status} {response.url}")

    page.on("response", heard)
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    before = {run["id"] for run in httpx.post(f"{stack['api']}/flow_runs/filter", json=body).json()}
    for _ in range(attempts):
        seen = len(errors)
        _open_form(stack, deployment_id, page)
        if fill is not None:
            fill(page)
        page.get_by_role("button", name="Submit").click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = [r["id"] for r in httpx.post(f"{stack['api']}/flow_runs/filter", json=body).json()
                   if r["id"] not in before]  # fmt: skip
            if new:
                page.remove_listener("response", heard)
                return str(new[0])
            if len(errors) > seen:
                break
            time.sleep(1)
        if len(errors) == seen and any(status.startswith("2") for status in sent):
            break  # the server took the run's creation: another attempt would make a second run
        _wait_until_idle(stack)  # what kept the server's database busy
    page.remove_listener("response", heard)
    page.screenshot(path=SCREENSHOTS / "ingest-submit-refused.png", full_page=True)
    raise AssertionError(
        f"submitting the form created no run; the server errors: {errors}; run creations sent: {sent}; the page "
        "said:\n"
        f"{page.locator('body').inner_text()[-1500:]}\nand the servers:\n{stack['processes'].logs()}"
    )


def _wait_until_idle(stack: dict[str, Any], timeout: float = 120) -> None:
    """Until no flow run of the stack is pending or running (scheduled ones, in the future, do not count), and
    the server has heard no event for 3 s: after a run, its events and task states are still being written,
    and the local server's SQLite then refuses another writer ("database is locked", a 503 to the UI)."""
    body = {"flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING"]}}}}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        since = datetime.now(timezone.utc) - timedelta(seconds=3)
        recent = {"filter": {"occurred": {"since": since.isoformat()}}, "limit": 1}
        busy = httpx.post(f"{stack['api']}/flow_runs/filter", json=body).json()
        if not busy and not httpx.post(f"{stack['api']}/events/filter", json=recent).json()["events"]:
            return
        time.sleep(1)


def _finished_run(stack: dict[str, Any], run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{stack['api']}/flow_runs/{run_id}").json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED"):
            return dict(run)
        time.sleep(1)
    raise AssertionError(f"the run submitted from the form did not finish:\n{stack['processes'].logs()}")
