"""Secret hygiene: the SSH key and cloud secrets never show up anywhere a run leaves traces.

The ingest and export flows run under a real Prefect API with blocks that hold real secrets: an
``EncordCredentials`` block with the key's *content*, and an S3 block whose prefect-aws ``AwsCredentials``
holds a secret access key. Some runs are made to fail: a key no user registered (the exception text), a
key cut short (the parse error), a bucket that does not exist (listing and export writes). Then every place
those runs wrote to is read back and scanned: Python logs at DEBUG (ours, Prefect's, boto's, the SDK's), the
API's logs, artifacts, flow-run parameters and states, task runs, events, the exceptions themselves, block
documents as the API returns them, the run receipts and job ledger, the exported files; plus ``repr``,
``str`` and ``model_dump`` of every block, the GCS block's service-account key and the Azure block's
connection-string ``AccountKey`` and SAS among them.

A secret is looked for as written and in the encodings a careless log would use: the key's text, each
base64 line of it, its raw private bytes in hex and base64, and the whole text in hex and base64.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from encord_sandbox import samples
from encord_sandbox.emulators import put_s3_objects
from encord_sandbox.server import Sandbox
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL
from prefect.states import State
from prefect_aws import AwsCredentials
from prefect_azure import AzureBlobStorageCredentials
from prefect_gcp import GcpCredentials
from pydantic import SecretStr, ValidationError

from prefect_encord import EncordAzureIntegration, EncordCredentials, EncordGcsIntegration, EncordS3Integration
from prefect_encord.flows.export_labels import export_labels
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.parameters import CloudDestination, CloudSource, DatasetStep
from prefect_encord.state import run_ledger
from prefect_encord.state.job_ledger import default_directory as job_ledger_directory

HYGIENE_EMAIL = "hygiene@sandbox.local"
OBJECTS = {"cams/front.png": samples.png(), "cams/rear.png": samples.png(color=(0, 0, 9)), "notes.txt": b"notes"}


def _token() -> str:
    return uuid.uuid4().hex[:8]


def _openssh(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()


def _text_forms(text: str) -> list[str]:
    """A secret text as written, hex- and base64-encoded, and each long line of it (a PEM's base64 body)."""
    raw = text.encode()
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 16 and "-----" not in line]
    return [text, raw.hex(), base64.b64encode(raw).decode(), *lines]


def _key_forms(key: Ed25519PrivateKey, pem: str) -> list[str]:
    """``pem`` must be the text the block holds: each OpenSSH serialisation of a key differs (random check words)."""
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return [
        *_text_forms(pem),
        seed.hex(),
        base64.b64encode(seed).decode(),
        base64.urlsafe_b64encode(seed).decode().rstrip("="),
    ]


@dataclass
class Secrets:
    """Every secret of the test, and the forms each is looked for in."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    wrong_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    aws_secret: str = field(default_factory=lambda: "aws/" + secrets.token_urlsafe(30))
    sandbox_s3_secret: str = field(default_factory=lambda: "sbx/" + secrets.token_urlsafe(30))
    azure_account_key: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(64)).decode())
    azure_sas_signature: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    gcp_private_key: str = field(
        default_factory=lambda: (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            .decode()
        )
    )

    pem: str = field(init=False)
    wrong_pem: str = field(init=False)

    def __post_init__(self) -> None:
        self.pem, self.wrong_pem = _openssh(self.key), _openssh(self.wrong_key)

    def forms(self) -> dict[str, list[str]]:
        return {
            "ssh key": _key_forms(self.key, self.pem),
            "unregistered ssh key": _key_forms(self.wrong_key, self.wrong_pem),
            "aws secret access key": [self.aws_secret, base64.b64encode(self.aws_secret.encode()).decode()],
            "sandbox integration secret": [self.sandbox_s3_secret],
            "azure AccountKey": [self.azure_account_key],
            "azure SAS signature": [self.azure_sas_signature],
            "gcp service-account private key": _text_forms(self.gcp_private_key),
        }

    def found_in(self, text: str) -> list[str]:
        """``"<secret>: <form>"`` for every form of every secret that occurs in ``text``."""
        return [f"{name}: {form[:24]}…" for name, forms in self.forms().items() for form in forms if form in text]


# --- the runs --------------------------------------------------------------------------------------------------


class _Recorder(logging.Handler):
    """Every log record of the process, formatted with its arguments and traceback, at DEBUG."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record) + f" args={record.args!r}")
        except Exception as exc:  # a record that cannot be formatted is itself evidence to keep
            self.lines.append(f"unformattable record {record.name}: {exc!r} msg={record.msg!r} args={record.args!r}")


@dataclass
class Runs:
    secrets: Secrets
    blocks: dict[str, Block]
    states: dict[str, State[Any]]
    python_logs: list[str]
    started: datetime
    bucket: str
    endpoint: str

    def flow_run_ids(self) -> list[uuid.UUID]:
        return [s.state_details.flow_run_id for s in self.states.values() if s.state_details.flow_run_id]


@pytest.fixture(scope="module")
def runs(
    prefect_harness: None, hardened: Sandbox, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    found = Secrets()
    started = datetime.now(timezone.utc)
    public = found.key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    hardened.register_public_key(public, email=HYGIENE_EMAIL)
    integration = f"hygiene-{_token()}"
    hardened.add_integration(
        integration, "s3", owner_email=HYGIENE_EMAIL, endpoint_url=s3_endpoint, access_key_id="sandbox-reader",
        secret_access_key=found.sandbox_s3_secret, region="us-east-1",
    )  # fmt: skip
    bucket = f"hygiene-{_token()}"
    put_s3_objects(s3_endpoint, bucket, OBJECTS)

    aws = AwsCredentials(
        aws_access_key_id="AKIAHYGIENE", aws_secret_access_key=found.aws_secret, region_name="us-east-1"
    )
    pem = found.pem
    body = pem.splitlines()
    blocks: dict[str, Block] = {
        "encord-credentials/hygiene": EncordCredentials(ssh_private_key=SecretStr(pem), domain=hardened.domain),
        "encord-credentials/hygiene-unregistered": EncordCredentials(
            ssh_private_key=SecretStr(found.wrong_pem), domain=hardened.domain
        ),
        "encord-credentials/hygiene-cut-short": EncordCredentials(
            ssh_private_key=SecretStr("\n".join(body[:3] + body[-1:])), domain=hardened.domain
        ),
        "encord-s3-integration/hygiene": EncordS3Integration(
            bucket_name=bucket, integration=integration, endpoint_url=s3_endpoint, credentials=aws
        ),
        "encord-s3-integration/hygiene-missing": EncordS3Integration(
            bucket_name=f"missing-{_token()}", integration=integration, endpoint_url=s3_endpoint, credentials=aws
        ),
    }
    for slug_name, block in blocks.items():
        block.save(slug_name.split("/")[1], overwrite=True)
    blocks |= _offline_blocks(found)

    recorder, root = _Recorder(), logging.getLogger()
    previous_level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    states: dict[str, State[Any]] = {}
    try:
        source = CloudSource(block=blocks["encord-s3-integration/hygiene"])
        dataset = DatasetStep(title=f"hygiene {_token()}", project=f"hygiene {_token()}")
        credentials = blocks["encord-credentials/hygiene"]
        states["ingest"] = ingest(
            source=source, folder_path=f"hygiene/{_token()}", credentials=credentials, dataset=dataset,
            return_state=True,
        )  # fmt: skip
        summary = states["ingest"].result()
        _label_one_row(EncordCredentials(ssh_private_key=SecretStr(pem), domain=hardened.domain), summary.project_hash)
        to_bucket = CloudDestination(block=blocks["encord-s3-integration/hygiene"], prefix="exports")
        states["export"] = export_labels(
            summary.project_hash,
            destination=to_bucket,
            credentials=blocks["encord-credentials/hygiene"],
            return_state=True,
        )
        to_nowhere = CloudDestination(block=blocks["encord-s3-integration/hygiene-missing"])
        states["export to a missing bucket"] = export_labels(
            summary.project_hash,
            destination=to_nowhere,
            credentials=blocks["encord-credentials/hygiene"],
            return_state=True,
        )
        states["ingest with an unregistered key"] = ingest(
            source=source,
            folder_path="hygiene/never",
            credentials=blocks["encord-credentials/hygiene-unregistered"],
            return_state=True,
        )
        states["ingest with a key cut short"] = ingest(
            source=source,
            folder_path="hygiene/never",
            credentials=blocks["encord-credentials/hygiene-cut-short"],
            return_state=True,
        )
        states["ingest from a missing bucket"] = ingest(
            source=CloudSource(block=blocks["encord-s3-integration/hygiene-missing"]),
            folder_path=f"hygiene/{_token()}",
            credentials=blocks["encord-credentials/hygiene"],
            return_state=True,
        )
        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
    finally:
        root.removeHandler(recorder)
        root.setLevel(previous_level)
    yield Runs(found, blocks, states, recorder.lines, started, bucket, s3_endpoint)


def _offline_blocks(found: Secrets) -> dict[str, Block]:
    """GCS and Azure blocks holding secrets, built but not used against a service (repr, dumps, URLs)."""
    service_account = {
        "type": "service_account",
        "project_id": "hygiene",
        "private_key_id": "0123456789abcdef",
        "private_key": found.gcp_private_key,
        "client_email": "hygiene@hygiene.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    account_key = (
        "DefaultEndpointsProtocol=https;AccountName=hygiene;"
        f"AccountKey={found.azure_account_key};EndpointSuffix=core.windows.net"
    )
    sas = (
        "BlobEndpoint=https://hygiene.blob.core.windows.net;"
        f"SharedAccessSignature=sv=2024-01-01&ss=b&srt=co&sp=rl&sig={found.azure_sas_signature}"
    )
    return {
        "gcp-credentials (offline)": GcpCredentials(service_account_info=service_account),
        "encord-gcs-integration (offline)": EncordGcsIntegration(
            bucket="hygiene", integration="gcs", credentials=GcpCredentials(service_account_info=service_account)
        ),
        "encord-azure-integration (account key, offline)": EncordAzureIntegration(
            container_name="hygiene",
            integration="azure",
            credentials=AzureBlobStorageCredentials(connection_string=account_key),
        ),  # fmt: skip
        "encord-azure-integration (SAS, offline)": EncordAzureIntegration(
            container_name="hygiene",
            integration="azure",
            credentials=AzureBlobStorageCredentials(connection_string=sas),
        ),
    }


def _label_one_row(credentials: EncordCredentials, project_hash: str | None) -> None:
    assert project_hash is not None
    (row, *_) = credentials.get_client().get_project(project_hash).list_label_rows_v2()
    row.initialise_labels()
    row.save()


# --- what the runs left behind ---------------------------------------------------------------------------------


def _events(since: datetime) -> list[dict[str, Any]]:
    """Every event since ``since`` (ours and Prefect's own), polled until the count stops growing."""
    body = {"filter": {"occurred": {"since": since.isoformat()}}, "limit": 50}
    seen: list[dict[str, Any]] = []
    for _ in range(20):
        page = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body, timeout=30).json()
        events = list(page["events"])
        while page.get("next_page"):
            page = httpx.get(page["next_page"], timeout=30).json()
            events.extend(page["events"])
        if events and len(events) == len(seen):
            return events
        seen = events
        time.sleep(0.5)
    return seen


def _exceptions(runs: Runs) -> list[str]:
    texts = []
    for name, state in runs.states.items():
        texts.append(f"{name}: {state.message!r}")
        if state.is_failed():
            error = state.result(raise_on_failure=False)
            assert isinstance(error, BaseException), (name, error)
            texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    return texts


def _block_views(runs: Runs) -> list[str]:
    """``repr``, ``str`` and dumps of every block, as built and as loaded back from the API."""
    loaded = {f"{name} (loaded)": Block.load(name) for name in runs.blocks if "offline" not in name}
    views = []
    for name, block in {**runs.blocks, **loaded}.items():
        views += [name, repr(block), str(block), repr(block.model_dump()), block.model_dump_json()]
        views.append(json.dumps(block.model_dump(mode="json")))
        if isinstance(block, EncordAzureIntegration):
            views += [block.root_url, block.object_url("cams/front.png")]  # URLs we would send to Encord
    return views


def _api_records(runs: Runs) -> dict[str, list[str]]:
    ids = runs.flow_run_ids()
    with get_client(sync_client=True) as client:
        logs: list[Any] = []
        while page := client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200, offset=len(logs)
        ):
            logs += page
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
        flow_runs = [client.read_flow_run(i) for i in ids]
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        documents = client.read_block_documents(include_secrets=False)
    return {
        "API logs": [log.model_dump_json() for log in logs],
        "artifacts": [a.model_dump_json() for a in artifacts],
        "flow runs (parameters, states)": [r.model_dump_json() for r in flow_runs],
        "task runs (inputs, states)": [r.model_dump_json() for r in task_runs],
        "block documents from the API": [d.model_dump_json() for d in documents],
    }


def _files(runs: Runs) -> list[str]:
    """Run receipts, the job ledger, and the exported label files in the bucket."""
    texts = []
    for state in runs.states.values():
        receipt = run_ledger.default_directory() / f"{state.state_details.flow_run_id}.json"
        if receipt.exists():
            texts.append(receipt.read_text())
    ledger = job_ledger_directory()
    texts += [p.read_text() for p in ledger.rglob("*") if p.is_file()] if ledger.exists() else []
    bucket = Block.load("encord-s3-integration/hygiene")
    assert isinstance(bucket, EncordS3Integration)
    texts += [bucket.read_object(r.key).decode() for r in bucket.list_objects() if r.key.startswith("exports/")]
    return texts


@pytest.fixture(scope="module")
def traces(runs: Runs) -> dict[str, list[str]]:
    return {
        "Python logs (DEBUG)": runs.python_logs,
        **_api_records(runs),
        "events": [json.dumps(e) for e in _events(runs.started)],
        "exceptions and state messages": _exceptions(runs),
        "block reprs and dumps": _block_views(runs),
        "receipts, job ledger, exported files": _files(runs),
    }


# --- the checks ------------------------------------------------------------------------------------------------


def test_the_runs_did_what_the_scan_needs(runs: Runs, traces: dict[str, list[str]]) -> None:
    """The scan means something only if the runs really used the secrets, wrote traces, and failed as intended."""
    states = runs.states
    assert states["ingest"].is_completed() and states["export"].is_completed()
    summary = states["ingest"].result()
    assert summary.created == 3 and summary.project_hash
    assert states["export"].result().exported  # the labelled row went to the bucket through the secret's credentials
    failures = {name: str(state.result(raise_on_failure=False)) for name, state in states.items() if state.is_failed()}
    assert set(failures) == {
        "export to a missing bucket", "ingest with an unregistered key", "ingest with a key cut short",
        "ingest from a missing bucket",
    }  # fmt: skip
    assert "unknown public key" in failures["ingest with an unregistered key"]
    assert "could not be loaded" in failures["ingest with a key cut short"]
    assert "does not exist" in failures["ingest from a missing bucket"]
    assert "does not exist" in failures["export to a missing bucket"]
    for surface in ("Python logs (DEBUG)", "API logs", "artifacts", "events", "task runs (inputs, states)"):
        assert len(traces[surface]) >= 3, surface
    assert any("botocore" in line for line in runs.python_logs)  # DEBUG logs of the S3 client were recorded
    assert any("unknown public key" in line for line in runs.python_logs)  # and the runs' own failure logs


def test_the_scanner_finds_every_form_of_every_secret(runs: Runs) -> None:
    for name, forms in runs.secrets.forms().items():
        for form in forms:
            assert runs.secrets.found_in(f"... {form} ..."), (name, form)


@pytest.mark.parametrize(
    "surface",
    [
        "Python logs (DEBUG)",
        "API logs",
        "artifacts",
        "flow runs (parameters, states)",
        "task runs (inputs, states)",
        "events",
        "exceptions and state messages",
        "block documents from the API",
        "block reprs and dumps",
        "receipts, job ledger, exported files",
    ],
)
def test_no_secret_in(surface: str, runs: Runs, traces: dict[str, list[str]]) -> None:
    leaks = {leak for text in traces[surface] for leak in runs.secrets.found_in(text)}
    assert not leaks, f"{surface} holds {sorted(leaks)}"


def test_flow_parameters_hold_credentials_blocks_with_the_key_masked(runs: Runs) -> None:
    """A block passed to a flow called directly is stored as its fields, its secret masked by Prefect.

    (A deployment stores a reference, ``{"$ref": …}``: tests/deployments.)"""
    with get_client(sync_client=True) as client:
        parameters = [client.read_flow_run(i).parameters for i in runs.flow_run_ids()]
    stored = [p["credentials"] for p in parameters]
    assert len(stored) == len(parameters) > 0
    assert all(c["block_type_slug"] == "encord-credentials" and c["ssh_private_key"] == "**********" for c in stored)


# --- validation errors echo no secret --------------------------------------------------------------------------


def test_refused_block_fields_are_not_echoed(runs: Runs) -> None:
    """Pydantic errors quote the input by default; the blocks turn that off where the input may be a secret."""
    pem = runs.secrets.pem
    refusals = []
    for build in (
        lambda: EncordCredentials(ssh_private_key=SecretStr(pem), ssh_private_key_path=Path("/k")),
        lambda: EncordCredentials(domain=f"https://reader:{runs.secrets.aws_secret}@api.encord.com"),
        lambda: EncordS3Integration(
            bucket_name="b", integration="i", endpoint_url=f"https://AKIA:{runs.secrets.aws_secret}@s3.example.com"
        ),
        lambda: EncordAzureIntegration(
            container_name="c", integration="i", account_url=f"https://x?{runs.secrets.azure_sas_signature}"
        ),
    ):
        with pytest.raises(ValidationError) as refused:
            build()
        refusals += [str(refused.value), repr(refused.value)]
    leaks = {leak for text in refusals for leak in runs.secrets.found_in(text)}
    assert not leaks, sorted(leaks)
