"""One process per run folder: an exclusive, non-blocking ``flock`` on a lock file beside it.

The lock file holds the holder's PID, so that a refused run can name it. The kernel drops the
lock when the holder exits, however it exits (a kill included): a stale lock file never blocks
a later run. The holder removes the file on release; :meth:`RunLock.acquire` re-checks, after
locking, that the file it locked is still the one at the path, so a file removed between its
open and its lock is never mistaken for the lock.
"""

from __future__ import annotations

import errno
import logging
import os

from lib.errors import RunFolderError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected against each other
    fcntl = None

logger = logging.getLogger(__name__)

# Attempts to lock a file that its holder keeps removing (one release per attempt at most).
_ATTEMPTS = 10
# Descriptors of the locks this process holds. A forked child (a DataLoader worker) closes its
# copies at once: an flock belongs to the open file, so a child that kept a copy would hold the
# lock after its parent is killed, and a prompt ``--resume`` would be refused.
_HELD_FDS: set[int] = set()


def _close_inherited_locks() -> None:
    """In a freshly forked child: drop this process's references to the parent's locks."""
    for fd in list(_HELD_FDS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_FDS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def read_holder_pid(path: str) -> int:
    """The PID written in the lock file ``path``; 0 when it is missing, empty or unreadable."""
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return 0
    return int(text) if text.isdigit() else 0


def _same_file(fd: int, path: str) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not removed or replaced)."""
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


class RunLock:
    """An exclusive lock on ``path`` for one run; use as a context manager or acquire/release.

    Args:
        path: the lock file (created when missing; never a symlink).
        what: what the lock protects, named in the refusal (e.g. the run folder).
    """

    def __init__(self, path: str, what: str = "") -> None:
        self.path = path
        self.what = what or path
        self._fd = -1

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd >= 0

    def acquire(self) -> RunLock:
        """Take the lock at once or raise RunFolderError naming the holder's PID."""
        if fcntl is None:
            logger.warning("no fcntl on this platform: %s is not locked against other runs",
                           self.what)
            return self
        for _ in range(_ATTEMPTS):
            fd = self._open()
            self._lock(fd)
            if _same_file(fd, self.path):
                self._fd = fd
                _HELD_FDS.add(fd)
                self._write_pid()
                return self
            os.close(fd)
        raise RunFolderError(f"could not lock {self.path}: it is removed and re-created while "
                             "trying; another run is starting on the same folder")

    def _open(self) -> int:
        """Open (creating) the lock file; a symlink in its place is refused."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, flags, 0o666)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise RunFolderError(f"lock file {self.path} is a symlink; remove it") from None
            raise RunFolderError(f"cannot create the lock file {self.path}: {err.strerror}; "
                                 "set OUTPUT_DIR to a folder you can write") from None

    def _lock(self, fd: int) -> None:
        """Lock ``fd`` at once, or close it and raise RunFolderError naming the holder."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = read_holder_pid(self.path)
            holder = f"process {pid}" if pid else "another process"
            raise RunFolderError(f"{self.what} is in use by {holder} (lock file {self.path}); "
                                 "wait for that run to end, stop it, or set EXP_NAME to another "
                                 "name") from None

    def _write_pid(self) -> None:
        """Record the holder's PID for the refusal message of a second run."""
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        """Remove the lock file and drop the lock (removal first, while still holding it)."""
        if self._fd < 0:
            return
        try:
            if _same_file(self._fd, self.path):
                os.remove(self.path)
        except OSError as err:
            logger.warning("could not remove the lock file %s: %s", self.path, err)
        finally:
            _HELD_FDS.discard(self._fd)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
