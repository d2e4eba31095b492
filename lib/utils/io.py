"""Atomic, durable file writes: a crash never leaves a half-written result or checkpoint."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from typing import Any

import torch

from lib.errors import OutputExistsError, OutputFileError

# Name prefix of the temporary file an atomic write renames over its target; a file with this
# prefix is an interrupted write, never a result.
TMP_PREFIX = ".tmp_"


def is_temp_file(name: str) -> bool:
    """Whether a file name is an atomic write's temporary file (left over if interrupted)."""
    return os.path.basename(name).startswith(TMP_PREFIX)


def _create_temp(folder: str, name: str) -> str:
    """Create an empty temporary file for ``name`` in ``folder``; its mode follows the umask.

    ``tempfile.mkstemp`` would make it 0600 whatever the umask; ``os.open`` with 0666 lets the
    kernel apply the umask as for any other new file. The temporary name ends with ``name`` so
    that writers which add a missing extension (``np.save``) keep the name unchanged.
    """
    for _ in range(100):
        tmp_path = os.path.join(folder, f"{TMP_PREFIX}{secrets.token_hex(6)}_{name}")
        try:
            handle = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(handle)
        return tmp_path
    raise FileExistsError(f"no free temporary name for {name} in {folder}")


def _fsync_path(path: str, directory: bool = False) -> None:
    """Flush a file's (or a folder's entries') data to disk; a no-op where unsupported."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        handle = os.open(path, flags)
    except OSError:
        if directory:  # e.g. Windows cannot open folders; the rename is as durable as it gets
            return
        raise
    try:
        os.fsync(handle)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(handle)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over.

    The temporary file is flushed to disk before the rename and the folder after it, so after
    a crash ``path`` holds either its old content or the whole new one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp_path = _create_temp(folder, os.path.basename(path))
    try:
        write(tmp_path)
        _fsync_path(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_path(folder, directory=True)


def remove_temp_files(folder: str) -> list[str]:
    """Remove the temporary files of interrupted atomic writes under ``folder``.

    Only call it while no other process writes there (under the run's lock). Returns the
    removed paths.
    """
    removed = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            if is_temp_file(name) and not os.path.islink(path) and os.path.isfile(path):
                os.remove(path)
                removed.append(path)
    return removed


def check_output_path(path: str, flag: str = "--output") -> None:
    """Refuse, before any work, an output path whose folder cannot be created or written.

    The nearest existing folder above ``path`` must be a folder (not a file) and writable;
    the missing folders below it are created when the output is written.
    """
    if os.path.isdir(path):
        raise OutputFileError(f"{flag} {path} is a folder; give a file path")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise OutputFileError(f"{flag} {path}: cannot write there, {folder} is a file, not a "
                              "folder; choose another path")
    if not os.access(folder, os.W_OK):
        raise OutputFileError(f"{flag} {path}: no permission to write in {folder}; choose "
                              "another path")


def check_output_file(path: str, overwrite: bool = False, flag: str = "--output") -> None:
    """Refuse, before any work, an output file path that cannot or may not be written.

    Raises:
        OutputFileError: ``path`` is a folder, or its folder cannot be created or written.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if os.path.isdir(path):
        raise OutputFileError(f"{flag} {path} is a folder; give a file path")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(f"{flag} {path} exists; pass --overwrite or choose another path")
    check_output_path(path, flag)


def save_json(path: str, data: Any) -> None:
    """Write JSON atomically, indented, keys in insertion order."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
    atomic_write(path, write)


def save_text(path: str, text: str) -> None:
    """Write a text file atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
    atomic_write(path, write)


def save_torch(path: str, obj: Any) -> None:
    """``torch.save`` atomically."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
