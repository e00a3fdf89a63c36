"""How every part of the project writes files: whole or not at all, only into folders it holds, and
with one error for a full disk.

- `atomic_output(path)` / `write_text(path, text)`: written under a temporary name beside `path` and
  renamed over it when complete. A temporary name is `.<name>.<pid>-<token>.tmp<ext>`: its writer
  removes it on any failure, and nothing else is ever removed by a writer.
- `append_lines(path, records)`: JSON lines appended under an exclusive lock in one write, so the
  records of one call are in the file all together or not at all.
- `claim_folder(folder, what)`: an exclusive lock on `folder/.claim` held for the life of the process
  (the kernel drops it when the process dies; its forked children, such as DataLoader workers, close
  their copies, so that they do not keep it). A second claim is refused naming the holder. The
  holder of a claim is the only writer in the folder, so it removes the temporary files that dead
  writers left there (`remove_dead_temporaries`).
- `NoSpaceError`: a write that met a full disk or quota names the path; partial files are removed and
  what was written before is unchanged.
- Where a filesystem keeps no file locks (flock fails: NFS without a lock manager, Lustre without
  `-o flock`), claims and appends go on without them, with one warning per path; such a claim removes
  no temporary file (their writers may be live on another machine).
"""

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import sys
import time

try:
    import fcntl  # POSIX only, as os.pread / os.pwrite below
except ImportError:
    raise ImportError("this code needs Linux or another POSIX system (Windows: WSL): it locks files by fcntl") from None

log = logging.getLogger(__name__)

CLAIM_FILE = ".claim"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.tmp(\.[^.]*)?$")  # group 1: the writer's process id


# What a training or evaluation run leaves in its folder (engine.runfolder), told apart from the data
# folders converters write.
_RUN_FILE = re.compile(
    r"^(settings\.json|result\.jsonl|log\.jsonl|tensorboard|train_subset\.json|checkpoint(_\d+|_last)?\.pth\.tar)$"
)


def is_run_file(name):
    """Whether a file or folder of this name in a run folder is one a run writes."""
    return bool(_RUN_FILE.match(name))


def run_files(folder):
    """The names of the run files in `folder` (sorted)."""
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if is_run_file(name))


def run_family(recorded, files=()):
    """'data', 'pretraining' or 'evaluation': what a folder's settings.json (a dict, or None) records, or
    without one its run `files` show (any checkpoint without a record counts as a pretraining's, so
    that --fresh never moves it: a released model's `checkpoint_0450.pth.tar`, or one copied in to be
    evaluated)."""
    recorded = recorded or {}
    if "counts" in recorded:
        return "data"
    if "optim" in recorded or (not recorded and any(n.startswith("checkpoint") for n in files)):
        return "pretraining"
    return "evaluation" if "stage" in recorded else None


def folder_settings(folder):
    """The settings.json in `folder` (a run's record, or a converter's summary) as a dict, or None
    without a readable one."""
    try:
        with open(os.path.join(folder, "settings.json")) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class OutputError(OSError):
    """An output cannot be written; the message names the path and the reason (shown without '[Errno N]')."""

    def __str__(self):
        return self.strerror


class NoSpaceError(OutputError):
    """A write failed because the file system is full or over quota; the message names the path."""

    def __init__(self, message, code=errno.ENOSPC):
        super().__init__(code, message)


class FolderInUseError(RuntimeError):
    """Another process holds the claim on a folder."""


def out_of_space(exc):
    """The errno (ENOSPC or EDQUOT) when `exc`, or an error it was raised from or while handling, says the
    disk is full or over quota; else None."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc.errno
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def no_space_error(path, consequence="the partial file was removed and files written earlier are unchanged"):
    """Turn a full-disk error met inside the block into a NoSpaceError naming `path`."""
    try:
        yield
    except Exception as exc:  # torch reports a failed write as a RuntimeError raised while handling it
        code = out_of_space(exc)
        if code and not isinstance(exc, NoSpaceError):
            raise NoSpaceError(f"no space left on {path}: {os.strerror(code)}; {consequence}", code) from exc
        raise


def temp_path(path):
    """A temporary path beside `path` that only this call's writer uses (same extension as `path`)."""
    name = os.path.basename(path)
    return os.path.join(
        os.path.dirname(os.path.abspath(path)),
        f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{os.path.splitext(name)[1]}",
    )


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path`; renamed to `path` when the block succeeds, removed otherwise.

    The new file gets the permissions the user's umask gives (mode 0o666 & ~umask, as open() does). A
    `path` that is a symbolic link gets its target written, as open() would write it.
    """
    path = os.path.realpath(path) if os.path.islink(path) else path
    tmp = temp_path(path)
    try:
        with no_space_error(path):
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            yield tmp
            os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_text(path, text):
    """Write `text` to `path` atomically (see `atomic_output`)."""
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def json_line(record):
    """`record` as one line of a JSON-lines file (keys sorted, other objects as their str)."""
    return json.dumps(record, sort_keys=True, default=str) + "\n"


def append_lines(path, records):
    """Append `records` as JSON lines to `path` (created with its folder if missing), all or none.

    Appenders hold an exclusive lock on the file, so lines never interleave, and write the records in
    one write; after a fragment an interrupted append left, a newline comes first. A full disk raises
    NoSpaceError with the file cut back to what it held before.
    """
    data = "".join(json_line(r) for r in records).encode()
    with no_space_error(path, "nothing was appended and the file is as it was"):
        os.makedirs(os.path.dirname(os.path.realpath(path)), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            _lock(fd, fcntl.LOCK_EX, path, "appends of several processes at once may interleave")
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            try:
                while data:
                    data = data[os.write(fd, data) :]
            except OSError:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


def file_in_the_way(folder):
    """The nearest existing one of `folder` (an absolute path) and its parents when it is not a folder
    (so `folder` cannot be made), else None."""
    ancestor = folder
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    return None if os.path.isdir(ancestor) else ancestor


def check_writable(path, what):
    """Raise OutputError naming `what` and `path` unless a file of a few kB can be written at `path` (its
    folder is made when missing; nothing else is left behind). Called before work whose result would
    otherwise be lost."""
    if os.path.isdir(path):
        raise OutputError(errno.EISDIR, f"{what} {path} is a folder; expected a file path")
    folder = os.path.dirname(os.path.realpath(path))  # a symbolic link's target: where an append writes
    blocking = file_in_the_way(folder)
    if blocking:
        raise OutputError(errno.ENOTDIR, f"{what} {path}: {blocking} is a file, not a folder")
    tmp = temp_path(os.path.realpath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.write(fd, bytes(4096))  # a full disk still makes an empty file
        finally:
            try:
                os.close(fd)  # some network file systems report a full disk here
            finally:
                os.unlink(tmp)
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "the file is read-only")
    except OSError as exc:
        raise OutputError(exc.errno, f"{what} {path}: cannot write there ({exc.strerror or exc})") from None


def file_fingerprint(path, blocks=64, block_bytes=4096, digest=None):
    """A cheap identity of a file: SHA-256 of its size and `blocks` evenly spaced blocks of its bytes
    (added to `digest` when given). Returns the first 16 hex digits. `path` may be a file open for binary
    reading: the fingerprint is then of what that file holds, whatever was renamed over its name since."""
    if not hasattr(path, "read"):
        with open(path, "rb") as f:
            return file_fingerprint(f, blocks, block_bytes, digest)
    digest = digest or hashlib.sha256()
    size = os.fstat(path.fileno()).st_size
    digest.update(str(size).encode())
    for i in range(blocks):
        path.seek(size * i // blocks)
        digest.update(path.read(block_bytes))
    return digest.hexdigest()[:16]


def is_temporary(name):
    """Whether a file name is one of `temp_path`'s."""
    return _TEMP_NAME.match(name) is not None


class Claim:
    """An exclusive claim on a folder (see the module docstring); `release()` or process exit ends it."""

    def __init__(self, folder, fd):
        self.folder, self._fd = folder, fd
        _HELD.add(self)

    def release(self):
        _HELD.discard(self)
        fd, self._fd = self._fd, None  # released even if closing fails
        if fd is not None:
            os.close(fd)


_HELD = set()  # this process's Claims


def _leave_claims_to_the_parent():
    """In a forked child (a DataLoader worker, a converter's parser): close its copies of the claims' files,
    so that a claim ends when its holder does, not when the last of its children notices."""
    for claim in list(_HELD):
        with contextlib.suppress(OSError):
            claim.release()


os.register_at_fork(after_in_child=_leave_claims_to_the_parent)


def claim_folder(folder, what):
    """Claim `folder` (created if missing) for this process, recording who holds it and for `what`.

    Raises FolderInUseError naming the holder when another process holds it. The holder then removes
    the temporary files dead writers left in the folder.
    """
    with no_space_error(folder, "nothing was written"):
        try:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(os.path.join(folder, CLAIM_FILE), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            if out_of_space(exc):
                raise
            raise OutputError(exc.errno, f"{folder}: cannot write there ({exc.strerror or exc})") from None
    claim = Claim(folder, fd)  # registered before the lock: a child forked from here on closes its copy
    try:
        try:
            locked = _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, folder, _UNLOCKED_CLAIM)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise FolderInUseError(
                f"{folder} is in use by {holder}; wait for it to finish, or choose another folder"
            ) from None
        holder = (
            f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')} "
            f"({what}: {' '.join(sys.argv)[:300]})"
        )
        with no_space_error(folder, "nothing was written"):
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(errors="replace"), 0)
    except BaseException:
        claim.release()  # the claim ends with the error
        raise
    if locked:  # unlocked, a live writer on another machine may share the folder: its files stay
        remove_dead_temporaries(folder)
    return claim


# flock's errors where a filesystem keeps no locks (NFS without a lock manager, Lustre without -o flock, …)
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
_warned_unlocked = set()
_UNLOCKED_CLAIM = "a second run into the folder is not refused, and interrupted writes' temporary files stay"


def _lock(fd, flags, path, consequence):
    """flock `fd` with `flags`; False where the filesystem of `path` keeps no locks: the work goes on
    unprotected, with one warning per path saying the `consequence`. Other errors (BlockingIOError
    included) are raised."""
    try:
        fcntl.flock(fd, flags)
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
        if path not in _warned_unlocked:
            _warned_unlocked.add(path)
            log.warning("%s: its filesystem keeps no file locks (%s), so %s", path, exc.strerror, consequence)
        return False
    return True


def remove_dead_temporaries(folder):
    """Remove the temporary files of interrupted writes in `folder` (call only while holding its claim):
    those whose writer (the process id in the name) is no longer running on this machine."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if is_temporary(name) and os.path.isfile(path) and not os.path.islink(path) and not _running(name):
            log.warning("removed %s, left by an interrupted write", path)
            os.unlink(path)


def _running(temporary_name):
    """Whether the process that named this temporary file is running (a live writer outside the claim,
    such as --save-features into a data folder)."""
    try:
        os.kill(int(_TEMP_NAME.match(temporary_name).group(1)), 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such process id)
        return False
    except PermissionError:  # another user's process
        return True
    return True


def keep_aside(folder, names, label):
    """Move the entries `names` of `folder` into a new subfolder `<label>-<date-time>`; returns its path."""
    aside = os.path.join(folder, f"{label}-{time.strftime('%Y%m%d-%H%M%S')}")
    suffix, candidate = 1, aside
    while os.path.exists(candidate):
        suffix += 1
        candidate = f"{aside}-{suffix}"
    os.makedirs(candidate)
    for name in names:
        os.replace(os.path.join(folder, name), os.path.join(candidate, name))
    return candidate
