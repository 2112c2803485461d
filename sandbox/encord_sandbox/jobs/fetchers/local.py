"""A local integration's files, read as Encord would read a bucket: only under its root, no symlink out."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING

from encord_sandbox.jobs.integrations import fail

if TYPE_CHECKING:
    pass


def fetch(url: str, root: str, relative: str, max_bytes: int | None) -> bytes:
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([real_root, target]) != real_root:
        fail(url, "outside_root", "the path resolves (through a symlink) to a file outside the integration root")
    # O_NOFOLLOW: the resolved path must not have become a symlink since it was checked.
    # O_NONBLOCK: opening a FIFO placed under root must not hang the worker thread.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(target, flags)
    except (FileNotFoundError, NotADirectoryError):
        fail(url, "not_found", "no such file")
    except PermissionError:
        fail(url, "access_denied", "the sandbox may not read this file")
    except OSError as exc:
        fail(url, "unavailable", f"the file could not be opened ({exc.strerror})")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            fail(url, "not_found", "not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            fail(url, "too_large", f"the file is larger than the {max_bytes}-byte limit")
        with open(fd, "rb", closefd=False) as file:
            return file.read() if max_bytes is None else file.read(max_bytes + 1)
    except OSError as exc:
        fail(url, "unavailable", f"the file could not be read ({exc.strerror})")
    finally:
        os.close(fd)


def list_keys(root: str, prefix: str) -> Iterator[list[tuple[str, str]]]:
    """The ``(path, size and modification time)`` of every regular file under ``root/prefix``, in pages of 1,000;
    symlinks are not followed, as a read through them would be refused."""
    page: list[tuple[str, str]] = []
    for directory, _, files in os.walk(os.path.join(root, prefix)):
        for name in sorted(files):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                page.append((os.path.relpath(path, root), f"{info.st_size}-{info.st_mtime_ns}"))
            if len(page) >= 1000:
                yield page
                page = []
    yield page
