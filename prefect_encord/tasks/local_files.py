"""The local side of an upload: which files under a directory take part (links followed only within it, nothing dropped
silently) and what each is (its digest, first bytes and size, read once).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect_encord.planning.signatures import HEAD_BYTES, refusal
from prefect_encord.planning.uploads import (
    UploadUnit,
    is_candidate,
    unit_digest,
)
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.tasks.transfers import CHUNK_BYTES


def source_root(directory: str | Path) -> Path:
    """The absolute directory to upload; checked before a flow writes anything, so a typo creates no folder.

    Raises:
        NotADirectoryError: Naming the path, if it is not a directory.
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory" + ("" if root.exists() else " (it does not exist)"))
    return root


def walk(root: Path, exclude: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The files to upload under ``root`` (relative POSIX paths, sorted) and the entries that cannot be, with why.

    Symbolic links are followed only within ``root``: a link that leads out of it (to ``/etc/passwd``) would
    upload what the user never meant to share, so it is listed, not followed. Every directory is walked once,
    under its own path; a link to one walked already (or a loop of links) adds nothing. An unreadable
    directory or a broken link is listed too: nothing drops out silently. Hidden entries and excluded files
    are left out, as :func:`is_candidate` says.
    """
    files: list[str] = []
    unusable: dict[str, str] = {}
    walked: dict[Path, str] = {}
    linked: list[tuple[Path, str]] = []  # directory links, walked after the real tree so it is walked as itself

    def visit(directory: Path, relative: str) -> None:
        walked[directory.resolve()] = relative
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            unusable[relative or "."] = f"cannot read the directory: {exc.strerror or exc}"
            return
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            if not is_candidate(path, exclude):
                continue
            try:
                if entry.is_symlink():
                    target = Path(entry.path).resolve(strict=True)
                    if not target.is_relative_to(root):
                        unusable[path] = f"a symbolic link to {target}, outside the directory uploaded; not followed"
                        continue
                if entry.is_dir():
                    if entry.is_symlink():
                        linked.append((Path(entry.path), path))
                    else:
                        visit(Path(entry.path), path)
                elif entry.is_file():
                    files.append(path)
                else:
                    unusable[path] = "not a regular file (a socket, pipe or device)"
            except (FileNotFoundError, RuntimeError):  # RuntimeError: a loop of links
                unusable[path] = "a broken symbolic link"
            except OSError as exc:
                unusable[path] = f"cannot read: {exc.strerror or exc}"

    visit(root, "")
    while linked:
        link, path = linked.pop(0)
        real = link.resolve()
        if real in walked:
            run_logger(__name__).info("%s links to %s, uploaded under its own path", path, walked[real] or ".")
        else:
            visit(link, path)
    return sorted(files), unusable


def identify(
    pool: ThreadPoolExecutor, root: Path, units: Sequence[UploadUnit], failed: dict[str, str]
) -> tuple[list[UploadUnit], dict[str, str], dict[str, int], dict[str, str]]:
    """Hash every file in parallel; return the units whose files are all readable media, their digests
    (key → digest), the files' sizes and digests (path → …), recording the others in ``failed`` (see
    :mod:`prefect_encord.planning.signatures`)."""
    paths = [p for unit in units for p in unit.files]
    file_digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    unusable: dict[str, str] = {}
    for path, outcome in zip(paths, pool.map(lambda p: _read(root / p), paths), strict=True):
        if isinstance(outcome, OSError):
            unusable[path] = f"cannot read: {outcome.strerror or outcome}"
        elif (refused := refusal(path, outcome[1])) is not None:
            unusable[path] = refused
        else:
            file_digests[path], sizes[path] = outcome[0], outcome[2]
    usable = []
    for unit in units:
        # A file's own row names it; a composite's row names its directory, so its reasons name the files.
        broken = [unusable[p] if unit.files == (unit.key,) else f"{p}: {unusable[p]}" for p in unit.files
                  if p in unusable]  # fmt: skip
        if broken:
            failed[unit.key] = "; ".join(broken)
        else:
            usable.append(unit)
    return usable, {unit.key: unit_digest(unit, file_digests) for unit in usable}, sizes, file_digests


def _read(path: Path) -> tuple[str, bytes, int] | OSError:
    """The file's SHA-256, its first bytes and its size, from one pass over it."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        return exc
    return digest.hexdigest(), head, size
