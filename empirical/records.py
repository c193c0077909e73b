"""Run records and output directories: append-only JSON Lines files that survive a crash and
several writers, an exclusive lock per output directory, and the options file that keeps the
results of different options from being mixed in one directory."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path


def read_records(path: Path) -> list[dict]:
    """The records of a records file; lines that are not a JSON object (a line cut by a crash
    or one being written by another process right now) are skipped."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:        # JSONDecodeError and UnicodeDecodeError
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def repair_records(path: Path) -> tuple[bool, list[int]]:
    """Make a records file safe to append to after a crash.

    A last line without its newline is a write cut short: it is cut off (the file truncated to
    its last newline) unless it is a whole record, which then gets its newline.  Returns
    (whether such a line was dropped, the 1-based numbers of the other lines that are not JSON
    objects, which readers skip).  Call it only while no other process writes the file."""
    path = Path(path)
    if not path.exists():
        return False, []

    def is_record(line: bytes) -> bool:
        try:
            return isinstance(json.loads(line), dict)
        except ValueError:
            return False

    dropped = False
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            end = data.rfind(b"\n") + 1
            if is_record(data[end:]):
                fh.write(b"\n")
                data += b"\n"
            else:
                fh.truncate(end)
                data = data[:end]
                dropped = True
            fh.flush()
            os.fsync(fh.fileno())
    bad = [i for i, line in enumerate(data.split(b"\n")[:-1], 1)
           if line.strip() and not is_record(line)]
    return dropped, bad


def _lock_file(fh, blocking: bool) -> bool | None:
    """An exclusive lock on an open file: fcntl.flock on POSIX, msvcrt.locking (its first
    byte) on Windows.  True when taken, False when another process holds it (non-blocking),
    None where the platform has neither (then nothing is locked).  Closing the file (or the
    process ending, killed or not) releases it."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True
    try:
        import msvcrt
    except ImportError:
        return None
    pos = fh.tell()
    fh.seek(0)
    try:
        msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
    except OSError:
        if blocking:
            raise
        return False
    finally:
        fh.seek(pos)
    return True


def _unlock_file(fh) -> None:
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return
    try:
        import msvcrt
    except ImportError:
        return
    fh.seek(0)
    msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


def append_records(path: Path, records: list[dict]) -> None:
    """Append whole lines under an exclusive lock (safe with several writers), flushed to disk
    before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    with open(path, "a") as fh:
        locked = _lock_file(fh, blocking=True)
        try:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            if locked:
                _unlock_file(fh)


class DirectoryInUse(ValueError):
    """Another process holds the output directory's lock."""


@contextmanager
def directory_lock(directory):
    """Hold an exclusive, non-blocking lock on `directory`/.lock for the duration; raises
    DirectoryInUse when another process holds it.  The lock file is left in place (removing
    it would let two processes lock two different files).  Where the platform has neither
    fcntl nor msvcrt nothing is locked."""
    directory = Path(directory)
    path = directory / ".lock"
    try:
        fh = open(path, "a+")
    except OSError as exc:
        raise ValueError(f"cannot write in output directory {directory}: "
                         f"{exc.strerror or exc}") from None
    try:
        try:
            locked = _lock_file(fh, blocking=False)
        except OSError as exc:    # e.g. a file system without locks
            raise ValueError(f"cannot lock output directory {directory} ({path}): "
                             f"{exc.strerror or exc}") from None
        if locked is False:
            raise DirectoryInUse(f"another nqm process is using {directory} (lock {path})")
        try:
            yield path
        finally:
            if locked:
                _unlock_file(fh)
    finally:
        fh.close()


def canonical(options: dict) -> dict:
    """Options as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(options, sort_keys=True))


# why an option that is not typed on the command line can differ
OPTION_NOTES = {
    "text_sha256": "charlm's text is this Python's own source files, which differ between "
                   "Python versions: use the Python version that made them",
    "workload_sha256": "the workload file's content differs",
    "data_sha256": "the data file's content differs",
}


def option_differences(there: dict, here: dict) -> list[str]:
    """'name: value there, value here' for every option that differs (with the reason from
    OPTION_NOTES where the option is not one the user types)."""
    missing = object()

    def show(v, absent):
        return absent if v is missing else v if isinstance(v, str) else json.dumps(v)

    out = []
    for k in sorted(set(there) | set(here)):
        a, b = there.get(k, missing), here.get(k, missing)
        if a != b:
            note = f" ({OPTION_NOTES[k]})" if k in OPTION_NOTES else ""
            out.append(f"{k}: {show(a, 'not recorded')} there, {show(b, 'not given')} here"
                       f"{note}")
    return out


def claim_directory(directory, options: dict, what: str, name: str,
                    found: list[dict] = ()) -> None:
    """Make sure the output `directory` holds only results of these `options`.

    `directory`/`name` holds the options of the first run into it (canonical JSON); a later
    run with other options is refused with a ValueError naming them, so that results of
    different options are never mixed.  A directory without that file but with results
    (`found`: the options of each result already there, as recorded) is checked against
    those.  Otherwise the file is written (atomically)."""
    directory = Path(directory)
    options = canonical(options)
    path = directory / name
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            raise ValueError(f"{path} is not readable JSON; remove it or use another --out") \
                from None
        found = [stored]
    for there in found:
        diff = option_differences(there, options)
        if diff:
            raise ValueError(f"{directory} holds a {what} with other options "
                             f"({'; '.join(diff)}); use another --out or remove it")
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(options, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)


def file_sha256(path) -> str:
    """The sha256 hex digest of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
