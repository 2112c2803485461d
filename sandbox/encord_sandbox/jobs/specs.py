"""Turn a data-upload job request into registration units (pure; no I/O).

Encord accepts two spellings of the same thing: the JSON import file (``externalFiles``: keys
``images``, ``videos``, ``image_groups`` with ``objectUrl_N`` frames, ``dicom_series`` …) and the
SDK's ``DataUploadItems`` DTO (``dataItems``: camelCase, frames as lists). Both become a list of
:class:`Unit` dicts here. A malformed request (unknown key, entry without a URL, frames with gaps)
is refused as a whole with a 400 naming the offending entry, before anything is written; a
problem that only concerns one unit (a sequence over the frame limit) is carried on that unit so
the job reports it as a unit error and its siblings still register.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from encord_sandbox.errors import InvalidArgument
from encord_sandbox.limits import MAX_SEQUENCE_FRAMES

# JSON-spec key → (unit kind, how frames are listed)
_FILE_SPEC_KEYS = {
    "images": "image",
    "videos": "video",
    "audio": "audio",
    "text": "plainText",
    "pdf": "pdf",
    "nifti": "nifti",
    "image_groups": "imageGroup",
    "dicom_series": "dicomSeries",
}
_DTO_SINGLE_KEYS = {
    "images": "image",
    "videos": "video",
    "audio": "audio",
    "text": "plainText",
    "pdf": "pdf",
    "nifti": "nifti",
}
_DTO_UNSUPPORTED = ("imageGroupsFromItems", "timeSeries", "scenes")
_PROVIDED_METADATA_KEYS = (
    "videoMetadata",
    "video_metadata",
    "audioMetadata",
    "audio_metadata",
    "audiometadata",
    "imageMetadata",
    "image_metadata",
    "textMetadata",
    "pdfMetadata",
)
_DEFAULT_TITLES = {"imageGroup": "image-group", "imageSequence": "image-sequence", "dicomSeries": "dicom-series"}
_FRAME_KEY = re.compile(r"^objectUrl_(\d+)$")

Unit = dict[str, Any]
"""``{"kind", "title", "urls", "placeholders", "client_metadata", "provided", "invalid"}``"""


def parse_job_request(body: dict[str, Any]) -> tuple[list[Unit], dict[str, bool]]:
    """Units and options (``skip_duplicate_urls``, ``upsert_metadata``) of a job request."""
    if not isinstance(body, dict):
        raise InvalidArgument("data-upload job body must be a JSON object")
    data_items, external = body.get("dataItems"), body.get("externalFiles")
    if (data_items is None) == (external is None):
        raise InvalidArgument("give exactly one of dataItems or externalFiles")
    units, options = _from_dto(data_items) if data_items is not None else _from_file_spec(external)
    if not units:
        raise InvalidArgument("the upload job lists no files")
    _require_unicode(body.get("fileName"), "fileName")
    for position, unit in enumerate(units):
        where = f"unit {position}"
        _require_unicode(unit["title"], f"{where} title")
        for i, url in enumerate(unit["urls"]):
            _require_unicode(url, f"{where} url {i}")
        for i, title in enumerate(unit.get("frame_titles") or []):
            _require_unicode(title, f"{where} frame title {i}")
    return units, options


def _from_file_spec(spec: Any) -> tuple[list[Unit], dict[str, bool]]:
    if not isinstance(spec, dict):
        raise InvalidArgument("externalFiles must be a JSON object")
    options = {
        "skip_duplicate_urls": _flag(spec, "skip_duplicate_urls", "skipDuplicateUrls"),
        "upsert_metadata": _flag(spec, "upsert_metadata", "upsertMetadata"),
    }
    flags = {"skip_duplicate_urls", "skipDuplicateUrls", "upsert_metadata", "upsertMetadata"}
    units: list[Unit] = []
    for key, entries in spec.items():
        if key in flags:
            continue
        if key not in _FILE_SPEC_KEYS:
            raise InvalidArgument(f"unknown key {key!r} in the JSON spec; expected one of {sorted(_FILE_SPEC_KEYS)}")
        if not isinstance(entries, list):
            raise InvalidArgument(f"{key!r} must be a list of entries")
        kind = _FILE_SPEC_KEYS[key]
        for position, entry in enumerate(entries):
            where = f"{key}[{position}]"
            _require_object(entry, where)
            if kind in ("imageGroup", "dicomSeries"):
                urls = _numbered_frames(entry, where)
                kind_here = "imageSequence" if kind == "imageGroup" and entry.get("createVideo") else kind
                units.append(_composite(kind_here, entry, urls, [None] * len(urls), where))
            else:
                units.append(_single(kind, entry, _url(entry, "objectUrl", where), None))
    return units, options


def _from_dto(items: Any) -> tuple[list[Unit], dict[str, bool]]:
    if not isinstance(items, dict):
        raise InvalidArgument("dataItems must be a JSON object")
    for key in _DTO_UNSUPPORTED:
        if items.get(key):
            raise InvalidArgument(f"dataItems.{key} is not supported by the sandbox")
    units: list[Unit] = []
    for key, kind in _DTO_SINGLE_KEYS.items():
        for position, entry in enumerate(_list(items, key)):
            where = f"dataItems.{key}[{position}]"
            _require_object(entry, where)
            units.append(_single(kind, entry, _url(entry, "objectUrl", where), entry.get("placeholderItemUuid")))
    for key, frames_key in (("imageGroups", "images"), ("dicomSeries", "dicomFiles")):
        for position, entry in enumerate(_list(items, key)):
            where = f"dataItems.{key}[{position}]"
            _require_object(entry, where)
            frames = entry.get(frames_key)
            if not isinstance(frames, list) or not frames:
                raise InvalidArgument(f"{where}.{frames_key} must be a non-empty list")
            urls = [_url(frame, "url", f"{where}.{frames_key}[{i}]") for i, frame in enumerate(frames)]
            placeholders = [frame.get("placeholderItemUuid") for frame in frames]
            kind = "dicomSeries" if key == "dicomSeries" else "imageGroup"
            if kind == "imageGroup" and entry.get("createVideo"):
                kind = "imageSequence"
            unit = _composite(kind, entry, urls, placeholders, where)
            unit["frame_titles"] = [frame.get("title") for frame in frames]
            units.append(unit)
    options = {
        "skip_duplicate_urls": bool(items.get("skipDuplicateUrls", False)),
        "upsert_metadata": bool(items.get("upsertMetadata", False)),
    }
    return units, options


def _single(kind: str, entry: dict[str, Any], url: str, placeholder: Any) -> Unit:
    return {
        "kind": kind,
        "title": entry.get("title"),
        "urls": [url],
        "placeholders": [placeholder],
        "client_metadata": _metadata(entry),
        "provided": _provided(entry),
        "invalid": None,
    }


def _composite(kind: str, entry: dict[str, Any], urls: list[str], placeholders: list[Any], where: str) -> Unit:
    title = entry.get("title")
    if title is None and placeholders and all(placeholders):
        # Local uploads (create_image_group & co.) may leave the title out; the SDK documents that
        # it is then "randomly generated". Only registrations from a cloud integration require one.
        title = f"{_DEFAULT_TITLES[kind]}-{uuid.uuid4().hex[:8]}"
    if not isinstance(title, str) or not title.strip():
        raise InvalidArgument(
            f"{where} needs a title (required for image groups, sequences and DICOM series registered from a "
            "cloud integration)"
        )
    invalid = None
    if kind == "imageSequence" and len(urls) > MAX_SEQUENCE_FRAMES:
        invalid = f"image sequence {title!r} has {len(urls)} frames; the maximum is {MAX_SEQUENCE_FRAMES}"
    return {
        "kind": kind,
        "title": title,
        "urls": urls,
        "placeholders": placeholders,
        "client_metadata": _metadata(entry),
        "provided": None,
        "invalid": invalid,
    }


def _numbered_frames(entry: dict[str, Any], where: str) -> list[str]:
    numbered = {int(m.group(1)): key for key in entry if (m := _FRAME_KEY.match(key))}
    if not numbered:
        raise InvalidArgument(f"{where} lists no frames (objectUrl_0, objectUrl_1, …)")
    expected = list(range(len(numbered)))
    if sorted(numbered) != expected:
        missing = sorted(set(expected) - set(numbered))
        raise InvalidArgument(f"{where} frames must be numbered from objectUrl_0 without gaps; missing {missing}")
    return [_url(entry, numbered[i], where) for i in expected]


def _url(entry: Any, key: str, where: str) -> str:
    _require_object(entry, where)
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{where} needs a non-empty {key!r}, got {value!r}")
    return value


def _metadata(entry: dict[str, Any]) -> dict[str, Any]:
    value = entry.get("clientMetadata", entry.get("client_metadata", {}))
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"clientMetadata of {entry.get('title') or entry.get('objectUrl')!r} must be an object")
    return value


def _provided(entry: dict[str, Any]) -> dict[str, Any] | None:
    for key in _PROVIDED_METADATA_KEYS:
        value = entry.get(key)
        if isinstance(value, dict):
            return {_snake(k): v for k, v in value.items()}
    return None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _list(items: dict[str, Any], key: str) -> list[Any]:
    value = items.get(key) or []
    if not isinstance(value, list):
        raise InvalidArgument(f"dataItems.{key} must be a list")
    return value


def _flag(spec: dict[str, Any], *keys: str) -> bool:
    return any(bool(spec.get(k)) for k in keys)


def _require_unicode(value: Any, where: str) -> None:
    """Names become database text: a lone surrogate (a non-UTF-8 file name escaped into JSON) is refused here,
    naming the value, rather than failing the unit's write after the job was accepted."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument(f"{where} {value!r} is not valid Unicode: it holds a lone surrogate") from None


def _require_object(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise InvalidArgument(f"{where} must be an object, got {entry!r}")
