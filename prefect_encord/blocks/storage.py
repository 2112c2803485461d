"""What every cloud integration block shares: the Encord integration it maps to, listing and filtering.

An Encord *cloud integration* is Encord's own permission to read a bucket; registering a file only sends
Encord the object's URL. A block therefore pairs two things: how *we* reach the bucket (to list, read and
write objects, through the provider's SDK and the user's existing prefect-aws / prefect-gcp /
prefect-azure credentials) and which Encord integration will fetch those objects. The subclasses supply
the provider calls; filtering, paging and resolving the integration live here once.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field

from prefect_encord.planning.objects import ObjectRecord, folder_prefix, is_modified_since, is_selected
from prefect_encord.planning.patterns import check_patterns
from prefect_encord.runtime.fan_out import merged

if TYPE_CHECKING:  # the SDK takes a second to import; only a flow's run needs it
    from encord import EncordUserClient

#: Objects per listing request: the most S3 and GCS serve in one page (Azure serves up to 5,000).
DEFAULT_PAGE_SIZE = 1000
#: Objects looked up at once by :meth:`CloudStorageIntegration.stat_objects`: each is a small request, bound
#: by latency.
_STAT_READERS = 16

ENCORD_LOGO_URL = "https://github.com/encord-team.png?size=256"


class IntegrationNotFound(ValueError):
    """No Encord cloud integration, or more than one, matches the configured title or UUID."""


def resolve_integration(client: EncordUserClient, integration: str) -> str:
    """The UUID of the Encord cloud integration whose UUID or title is ``integration``.

    One request lists the integrations the user can use; matching is local, so that an error can name
    what was looked for and what exists. A UUID wins over a title that happens to look like one.
    """
    wanted = integration.strip()
    available = client.get_cloud_integrations()
    by_uuid = [i for i in available if _same_uuid(i.id, wanted)]
    if by_uuid:
        return str(by_uuid[0].id)
    by_title = [i for i in available if i.title == wanted]
    if len(by_title) == 1:
        return str(by_title[0].id)
    if by_title:
        uuids = ", ".join(str(i.id) for i in by_title)
        raise IntegrationNotFound(
            f"{len(by_title)} Encord cloud integrations are titled {wanted!r} ({uuids}); "
            "set the block's integration to the UUID of the one to use."
        )
    known = ", ".join(f"{i.title!r}" for i in available) or "none"
    raise IntegrationNotFound(
        f"No Encord cloud integration has the title or UUID {wanted!r}; this user can use: {known}."
    )


def bare_endpoint(value: str | None) -> str | None:
    """``value`` if it is an http(s) URL without user-info, query or fragment (blank means unset).

    Object URLs are built on the endpoint and sent to Encord, so credentials written into it would leak
    into every registered URL; they belong in the credentials block. The value is not echoed back.
    """
    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    # "@" anywhere: a password holding a "/" ends the authority early, and urlsplit then sees no user-info.
    if "@" in value:
        raise ValueError("the endpoint must not carry credentials; use the credentials block")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the endpoint must be an http(s) URL such as https://storage.example.com")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("the endpoint must not carry credentials, a query or a fragment; use the credentials block")
    return value.strip().rstrip("/")


def _same_uuid(candidate: str, wanted: str) -> bool:
    try:
        return uuid.UUID(str(candidate)) == uuid.UUID(wanted)
    except ValueError:
        return False


class CloudStorageIntegration(Block, ABC):
    """A bucket (or container) that an Encord cloud integration can read; see the provider subclasses.

    Object keys are always full keys within the bucket. ``prefix`` only scopes listing (and the patterns
    it applies); reads and writes never add it, so a key from a listing can be passed straight back.
    """

    # Validation errors would otherwise echo the offending input, e.g. an endpoint with a password in it.
    model_config = ConfigDict(hide_input_in_errors=True)

    integration: str = Field(
        default=...,
        title="Encord Integration",
        description=(
            "Title or UUID of the Encord cloud integration that gives Encord read access to this bucket "
            "(Encord > Integrations). A UUID is unambiguous; a title must match exactly one integration."
        ),
    )
    prefix: str = Field(
        default="",
        description=(
            "Folder within the bucket to list, e.g. `cams/2026`. Include and exclude patterns are matched "
            "against keys relative to it. Leave empty for the whole bucket."
        ),
    )

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the SDK client a subclass caches once used (it holds locks and sockets, and cannot be
        pickled): a used block can still be sent to another process, e.g. a Dask worker, which builds its own."""
        state: dict[Any, Any] = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private and private.get("_client_cache") is not None:
            state = {**state, "__pydantic_private__": {**private, "_client_cache": None}}
        return state

    @property
    @abstractmethod
    def root_url(self) -> str:
        """The URL of the bucket's root, ending in ``/``, in the form the Encord integration expects."""

    @property
    def remote_url(self) -> str:
        """The block's bucket and prefix as a cloud-synced folder names them, ending in ``/`` (a subclass gives
        the provider's own scheme where Encord documents one: ``s3://``, ``gs://``)."""
        return self.root_url + folder_prefix(self.prefix)

    def object_url(self, key: str) -> str:
        """The URL Encord registers and fetches for the object ``key``: the root's, then the key, percent-encoded."""
        return self.root_url + quote(key)

    def key_of(self, url: str) -> str | None:
        """The key of the object whose URL is ``url`` (:meth:`object_url`'s inverse), None for another bucket's."""
        return unquote(url[len(self.root_url) :]) if url.startswith(self.root_url) else None

    @abstractmethod
    def _listing(
        self, prefix: str, page_size: int, delimiter: str | None
    ) -> Iterator[tuple[list[ObjectRecord], list[str]]]:
        """One provider page at a time, unfiltered: every object under ``prefix`` (no prefixes) or, with a
        ``delimiter``, the objects directly under it and the prefixes one ``delimiter`` deeper."""

    def _pages(self, prefix: str, page_size: int) -> Iterator[list[ObjectRecord]]:
        """Every object under ``prefix``, one provider page at a time, unfiltered."""
        for objects, _ in self._listing(prefix, page_size, delimiter=None):
            yield objects

    def _delimited_pages(self, prefix: str, page_size: int) -> Iterator[tuple[list[ObjectRecord], list[str]]]:
        """The objects directly under ``prefix`` and the prefixes one ``/`` deeper, one provider page at a time."""
        yield from self._listing(prefix, page_size, delimiter="/")

    @abstractmethod
    def _read(self, key: str, start: int, length: int | None) -> bytes:
        """``length`` bytes (all, if None) of ``key`` from ``start``; b"" past the end; FileNotFoundError if absent."""

    @abstractmethod
    def write_object(self, key: str, data: bytes, content_type: str | None = None) -> ObjectRecord:
        """Create or replace the object ``key`` with ``data`` and describe what was written."""

    @abstractmethod
    def _stat(self, key: str) -> ObjectRecord | None:
        """What a listing would say of the object ``key`` (size, ETag, time), or None if there is no such object."""

    def stat_objects(self, keys: Sequence[str]) -> Iterator[tuple[str, ObjectRecord | None]]:
        """Each key with its record, or None if it does not exist, in the order given: one small request per key,
        sent concurrently, so named keys (a bucket notification's) are reached without listing the bucket. The
        record is the one a listing gives (same URL, size and ETag), so a fingerprint compares alike either way.
        """
        with ThreadPoolExecutor(max_workers=_STAT_READERS, thread_name_prefix="object-stat") as pool:
            yield from zip(keys, pool.map(self._stat, keys), strict=True)

    @abstractmethod
    def delete_object(self, key: str) -> None:
        """Delete the object ``key``; an object already gone is no error (deleting is idempotent)."""

    def read_object(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        """The bytes of the object ``key``, or ``length`` bytes of it from ``start`` (fewer at its end).

        Raises:
            FileNotFoundError: If the object does not exist; the message names its URL.
            ValueError: If ``start`` is negative or ``length`` is not positive.
        """
        if start < 0 or (length is not None and length < 1):
            raise ValueError(f"invalid byte range: start={start}, length={length}")
        return self._read(key, start, length)

    def list_object_pages(
        self,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        modified_since: datetime | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        within: Sequence[str] | None = None,
        fan_out: int = 1,
    ) -> Iterator[list[ObjectRecord]]:
        """Objects under ``prefix`` that pass the filters, one listing page at a time.

        Nothing is held beyond the current page, so memory stays flat however large the bucket; a caller
        can checkpoint between pages. Pages left empty by the filters are not yielded. Directory markers
        (zero-byte keys ending in ``/``, made by consoles) are not objects and never appear.

        Args:
            include: Glob patterns (``fnmatch``; ``*`` crosses ``/``) on the key relative to ``prefix``;
                an object must match one. Empty means every object.
            exclude: Glob patterns that drop an object even if included.
            modified_since: Keep only objects modified at or after this moment (naive means UTC), e.g.
                the newest ``last_modified`` of the previous run.
            page_size: Objects per listing request.
            within: Only these directories under ``prefix`` (relative, ending in ``/``; see
                :func:`~prefect_encord.planning.objects.key_directories`); None lists all of ``prefix``.
            fan_out: List this many of the prefix's top-level folders at once (with ``within`` None): a listing
                is bound by round trips, so a bucket of many folders lists that much faster. Pages then come in
                the order they arrive, not in key order; memory still holds a few pages.
        """
        if page_size < 1:
            raise ValueError(f"page_size {page_size} must be at least 1")
        check_patterns(include=include, exclude=exclude)
        base = folder_prefix(self.prefix)
        if fan_out < 1:
            raise ValueError(f"fan_out {fan_out} must be at least 1")
        pages = (
            self._fanned_out_pages(base, page_size, fan_out)
            if within is None and fan_out > 1
            else (p for listed in ([base + d for d in within] if within is not None else [base])
                  for p in self._pages(listed, page_size))
        )  # fmt: skip
        for page in pages:
            selected = [
                record
                for record in page
                if not record.key.endswith("/")
                and is_selected(record.key[len(base) :], include, exclude)
                and is_modified_since(record.last_modified, modified_since)
            ]
            if selected:
                yield selected

    def _fanned_out_pages(self, base: str, page_size: int, fan_out: int) -> Iterator[list[ObjectRecord]]:
        """The objects directly under ``base`` first, then those of its folders, ``fan_out`` folders at a time."""
        folders: list[str] = []
        for objects, prefixes in self._delimited_pages(base, page_size):
            if objects:
                yield objects
            folders.extend(prefixes)
        yield from merged(folders, lambda folder: self._pages(folder, page_size), fan_out)

    def list_objects(
        self,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        modified_since: datetime | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        within: Sequence[str] | None = None,
        fan_out: int = 1,
    ) -> Iterator[ObjectRecord]:
        """The objects of :meth:`list_object_pages`, one at a time."""
        for page in self.list_object_pages(include, exclude, modified_since, page_size, within, fan_out):
            yield from page
