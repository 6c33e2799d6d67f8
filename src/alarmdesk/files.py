"""Writing an output file (an audit export, a report, an EIDO, the set-up files) the one way
alarmdesk does it: into the file the path names, atomically.

* A symlink is followed: the file it names is written, and the temporary file is made beside
  that file (a rename across file systems would fail, and replacing the link would leave the
  file it names untouched).
* A path that exists and is not a regular file (a folder, a FIFO, a device such as
  /dev/full) is refused with :class:`OutputPathError` before anything is written: renaming a
  file over it would replace a device node or a pipe a reader waits on.
* The text goes to a temporary sibling, is flushed to disk, and is renamed over the target:
  a reader never sees half a file, and on any error (a full disk) the target is untouched
  and the temporary file removed. A file that existed keeps its permissions.

Check a path with :func:`output_target` before doing what the file records (an audit entry,
a disclosure), so a path that cannot be written is refused before anything happens.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["OutputPathError", "check_output_folder", "output_target", "write_file"]


class OutputPathError(ValueError):
    """A path that cannot be an output file or folder: bad input, not a failure at run time."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def output_target(path: str | os.PathLike[str]) -> Path:
    """The regular file that writing to ``path`` writes: ``path``, or the file its symlinks
    name. Raises :class:`OutputPathError` when its folder does not exist, or when it exists
    and is not a regular file."""
    given = Path(path)
    target = Path(os.path.realpath(given))
    if not target.parent.is_dir():
        raise OutputPathError(f"no folder {target.parent} for {given}")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:  # a symlink loop, a folder it may not search
        raise OutputPathError(f"cannot write {given}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise OutputPathError(f"cannot write {given}: it is {_kind(mode)}, not a regular file")
    return target


def check_output_folder(path: str | os.PathLike[str]) -> None:
    """Raises :class:`OutputPathError` when ``path``, or the nearest folder above it that
    exists, is not a folder (the files could never be written there)."""
    folder = Path(path)
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputPathError(
                    f"{p} is not a folder" if p == folder else f"{p} (in {folder}) is not a folder"
                )
            return


def write_file(
    path: str | os.PathLike[str], text: str | Iterable[str], *, mode: int = 0o666
) -> Path:
    """Writes ``text`` (a string, or strings in order) as UTF-8 to ``path`` atomically (see the
    module); returns the file written. A new file gets ``mode`` less the umask. Raises
    :class:`OutputPathError` for a path that cannot be an output file, :class:`OSError` when
    the writing fails (the target is then untouched); an exception raised while producing
    ``text`` leaves the target untouched too."""
    target = output_target(path)
    try:
        existing: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        existing = None
    while True:
        temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            if existing is not None:
                os.fchmod(f.fileno(), existing)
            for chunk in [text] if isinstance(text, str) else text:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename survives a crash; not every FS can say so
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target
