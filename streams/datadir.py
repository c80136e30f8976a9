"""One worker per data dir: a lock on `<data_dir>/<app_id>.lock`, so that two workers on a host never write
the same checkpoint file (streams/snapshot.py)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from streams.errors import SettingsError

_HELD_LOCKS: list[int] = []  # descriptors of this process's data-dir locks (see DataDirLock)


class DataDirLock:
    """An exclusive `flock` on `<data_dir>/<app_id>.lock`, held until `release` or the process ends: two workers
    with the same data dir and app id would write the same checkpoint file.

    The kernel drops the lock when the process dies, even by SIGKILL, so a restarted worker finds it free. A
    forked child (the checkpoint writer, streams/snapshot.py) closes its copy of the descriptor at once: the
    lock belongs to the open file description, which the parent keeps open, so the parent still holds it; and
    a child that outlives a killed parent does not keep the next worker out."""

    def __init__(self, data_dir: str, app_id: str) -> None:
        folder = Path(data_dir or ".")
        self.path = folder / f"{app_id}.lock"
        where = f"INTERCEPTOR_DATA_DIR={data_dir}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SettingsError(f"{where}: cannot create {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise SettingsError(f"{where}: cannot lock {self.path}: {exc.strerror}") from None
            raise SettingsError(
                f"another worker (pid {holder or '?'}) uses {where} with INTERCEPTOR_APP_ID={app_id}: give each "
                f"worker on this host its own data dir (it holds {self.path})"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)  # for the message above, in the next worker
        _HELD_LOCKS.append(self._fd)

    def release(self) -> None:
        if self._fd is not None:
            _HELD_LOCKS.remove(self._fd)
            os.close(self._fd)  # the last descriptor of the open file description: the lock goes with it
            self._fd = None


def _close_locks_in_child() -> None:
    for fd in _HELD_LOCKS:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_locks_in_child)
