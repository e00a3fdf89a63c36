"""dataset/files.py, the project's one write convention, against expectations written out by hand: whole
files or none, the user's umask, all-or-none appends, folder claims between processes, temporary files
removed only when they are a dead writer's, one error for a full disk."""

import contextlib
import errno
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

from data_gen import ucla_gendata
from data_gen.synthetic import generate_ucla
from dataset import files
from dataset.files import (
    FolderInUseError,
    NoSpaceError,
    append_lines,
    atomic_output,
    check_writable,
    claim_folder,
    file_fingerprint,
    folder_settings,
    is_temporary,
    keep_aside,
    no_space_error,
    out_of_space,
    remove_dead_temporaries,
    temp_path,
    write_text,
)


def _temp_pattern(folder, name, ext):
    """The documented temporary name of `folder/name`: '.<name>.<pid>-<8 hex>.tmp<ext>' beside it."""
    return re.escape(os.path.join(folder, f".{name}.{os.getpid()}-")) + r"[0-9a-f]{8}" + re.escape(f".tmp{ext}")


@contextlib.contextmanager
def _umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def _claimed_by_another_process(folder):
    """A separate Python process that claims `folder` and sleeps; yields it once the claim is held."""
    code = (
        "import sys, time\nfrom dataset.files import claim_folder\n"
        'claim = claim_folder(sys.argv[1], "a test holder")\nprint("claimed", flush=True)\ntime.sleep(120)\n'
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "claimed"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


# temp_path, is_temporary


def test_temporary_names_sit_beside_the_file_and_keep_its_extension(tmp_path, monkeypatch):
    folder = str(tmp_path)
    first = temp_path(os.path.join(folder, "train_data_joint.npy"))
    second = temp_path(os.path.join(folder, "train_data_joint.npy"))
    assert re.fullmatch(_temp_pattern(folder, "train_data_joint.npy", ".npy"), first)
    assert first != second  # one name per writer
    assert re.fullmatch(_temp_pattern(folder, "log", ""), temp_path(os.path.join(folder, "log")))
    monkeypatch.chdir(tmp_path)
    assert re.fullmatch(_temp_pattern(folder, "a.json", ".json"), temp_path("a.json"))  # an absolute folder
    assert is_temporary(os.path.basename(first)) and is_temporary(".log.12-0123abcd.tmp")
    for name in (
        ".tmp-notes.txt",
        ".tmp-123-train_data_joint.npy",
        "notes.tmp",
        ".a.npy.12-0123ABCD.tmp.npy",
        ".a.npy.12-0123abc.tmp.npy",
        "a.npy.12-0123abcd.tmp.npy",
        ".a.npy.x-0123abcd.tmp.npy",
    ):
        assert not is_temporary(name), name


# atomic_output, write_text


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_writer_failing_midway_leaves_the_old_file_whole_and_no_temporary(tmp_path, failure):
    path = tmp_path / "record.json"
    path.write_text('{"old": true}\n')
    with pytest.raises(failure):
        with atomic_output(str(path)) as tmp:
            assert re.fullmatch(_temp_pattern(str(tmp_path), "record.json", ".json"), tmp)
            with open(tmp, "w") as f:
                f.write('{"new": ')  # half written
                f.flush()
                raise failure("the writer died")
    assert path.read_text() == '{"old": true}\n'
    assert os.listdir(tmp_path) == ["record.json"]


def test_complete_write_replaces_the_file_and_makes_its_folder(tmp_path):
    path = tmp_path / "new" / "record.json"
    write_text(str(path), "first\n")
    write_text(str(path), "second\n")
    assert path.read_text() == "second\n" and os.listdir(path.parent) == ["record.json"]


def test_full_disk_during_a_write_is_a_no_space_error_naming_the_file(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("old\n")
    with pytest.raises(NoSpaceError) as info:
        with atomic_output(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("part")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert str(info.value).startswith(f"no space left on {path}: ")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["record.json"]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_new_files_follow_the_umask(tmp_path, mask, mode):
    with _umask(mask):
        write_text(str(tmp_path / "text.txt"), "x\n")
        with atomic_output(str(tmp_path / "data.bin")) as tmp, open(tmp, "wb") as f:
            f.write(b"x")
        append_lines(str(tmp_path / "log.jsonl"), [{"a": 1}])
    for name in ("text.txt", "data.bin", "log.jsonl"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name


# append_lines


def test_records_are_appended_as_sorted_json_lines(tmp_path):
    path = tmp_path / "log" / "events.jsonl"  # folder made when missing
    append_lines(str(path), [{"b": "x", "a": 1}, {"path": pathlib.PurePosixPath("/d/e")}])
    append_lines(str(path), [{"n": None}])
    assert path.read_bytes() == b'{"a": 1, "b": "x"}\n{"path": "/d/e"}\n{"n": null}\n'


def test_append_after_a_fragment_starts_on_a_new_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1}\n{"interrupted": ')  # an append cut short
    append_lines(str(path), [{"b": 2}, {"c": 3}])
    assert path.read_bytes() == b'{"a": 1}\n{"interrupted": \n{"b": 2}\n{"c": 3}\n'
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines[2:]] == [{"b": 2}, {"c": 3}]


def test_full_disk_appends_nothing(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    before = path.read_bytes()
    real_write, calls = os.write, []

    def write(fd, data):  # the disk fills after the first 10 bytes of the append
        if os.readlink(f"/proc/self/fd/{fd}") != str(path):
            return real_write(fd, data)
        calls.append(bytes(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(NoSpaceError) as info:
        append_lines(str(path), [{"c": 3}, {"d": 4}, {"e": 5}])
    monkeypatch.undo()
    assert len(calls) == 2 and calls[0].count(b"\n") == 3  # all three records in one write
    assert str(info.value).startswith(f"no space left on {path}: ") and info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # byte-identical: none of the three
    append_lines(str(path), [{"f": 6}])
    assert path.read_bytes() == before + b'{"f": 6}\n'


def test_appenders_in_several_processes_never_interleave(tmp_path):
    path = tmp_path / "events.jsonl"
    code = (
        "import sys\nfrom dataset.files import append_lines\n"
        "for i in range(100):\n"
        '    records = [{"w": sys.argv[2], "i": i, "k": k, "pad": "x" * 3000} for k in range(3)]\n'
        "    append_lines(sys.argv[1], records)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(w)]) for w in range(3)]
    assert [p.wait() for p in procs] == [0, 0, 0]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 3 * 100 * 3
    for start in range(0, len(records), 3):  # each call's records together
        group = records[start : start + 3]
        assert [(r["w"], r["i"], r["k"]) for r in group] == [(group[0]["w"], group[0]["i"], k) for k in range(3)]


# no_space_error, out_of_space


def test_only_a_full_disk_or_quota_becomes_a_no_space_error(tmp_path):
    path = str(tmp_path / "f")
    for code in (errno.ENOSPC, errno.EDQUOT):
        with pytest.raises(NoSpaceError, match=f"^no space left on {path}: "):
            with no_space_error(path):
                raise OSError(code, os.strerror(code))
    with pytest.raises(NoSpaceError):  # torch: a RuntimeError raised while handling it
        with no_space_error(path):
            try:
                raise OSError(errno.ENOSPC, "write failed")
            except OSError:
                raise RuntimeError("PytorchStreamWriter failed writing file")  # noqa: B904  (as torch does)
    with pytest.raises(PermissionError):
        with no_space_error(path):
            raise PermissionError(errno.EACCES, "denied")
    inner = NoSpaceError("no space left on elsewhere: full")
    with pytest.raises(NoSpaceError) as info:
        with no_space_error(path):
            raise inner
    assert info.value is inner  # not wrapped twice
    assert out_of_space(OSError(errno.EDQUOT, "quota")) and not out_of_space(OSError(errno.EIO, "io"))
    assert not out_of_space(ValueError("x"))


# check_writable


def test_check_writable_accepts_a_writable_path_and_leaves_nothing(tmp_path):
    check_writable(str(tmp_path / "new" / "results.json"), "the results file")
    assert os.listdir(tmp_path) == ["new"] and os.listdir(tmp_path / "new") == []  # its folder only
    (tmp_path / "old.json").write_text("kept\n")
    check_writable(str(tmp_path / "old.json"), "the results file")
    assert (tmp_path / "old.json").read_text() == "kept\n"


def test_check_writable_finds_a_full_disk_that_still_makes_empty_files(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "write", full)
    with pytest.raises(OSError) as info:
        check_writable(str(tmp_path / "r.jsonl"), "--results")
    assert str(info.value) == f"--results {tmp_path}/r.jsonl: cannot write there (No space left on device)"
    assert os.listdir(tmp_path) == []  # the probe file is gone


def test_check_writable_follows_a_symbolic_link_as_the_append_will(tmp_path):
    # A dangling link into a missing folder: the check makes the target's folder, and the append writes there.
    link = tmp_path / "results.jsonl"
    link.symlink_to(tmp_path / "elsewhere" / "sub" / "r.jsonl")
    check_writable(str(link), "--results")
    append_lines(str(link), [{"a": 1}])
    assert (tmp_path / "elsewhere" / "sub" / "r.jsonl").read_text() == '{"a": 1}\n' and link.is_symlink()
    (tmp_path / "afile").write_text("x")
    under_a_file = tmp_path / "bad.jsonl"
    under_a_file.symlink_to(tmp_path / "afile" / "r.jsonl")
    with pytest.raises(OSError, match="is a file, not a folder"):
        check_writable(str(under_a_file), "--results")


def test_an_atomic_write_through_a_symbolic_link_writes_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f.npz").write_text("old")
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "real" / "f.npz")
    write_text(str(link), "new")
    assert link.is_symlink() and (tmp_path / "real" / "f.npz").read_text() == "new"


def test_check_writable_refuses_a_folder(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError) as info:
        check_writable(str(tmp_path / "out"), "the results file")
    assert info.value.errno == errno.EISDIR and str(info.value) == info.value.strerror  # no '[Errno 21]'
    assert info.value.strerror.startswith(f"the results file {tmp_path}/out is a folder")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(tmp_path / "out") == []


def test_check_writable_refuses_a_path_under_a_file(tmp_path):
    # fails for root as well: no permission lets a regular file hold entries
    (tmp_path / "somefile").write_text("a file\n")
    for path in (tmp_path / "somefile" / "x", tmp_path / "somefile" / "deeper" / "x"):
        with pytest.raises(OSError) as info:
            check_writable(str(path), "the log")
        assert info.value.strerror == f"the log {path}: {tmp_path}/somefile is a file, not a folder"
    assert os.listdir(tmp_path) == ["somefile"] and (tmp_path / "somefile").read_text() == "a file\n"


def test_check_writable_refuses_a_read_only_file_system(tmp_path, monkeypatch):
    # root may write into a mode-555 folder, so the file system's refusal is simulated where it happens
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OSError) as info:
        check_writable(str(tmp_path / "x"), "the log")
    assert info.value.strerror == f"the log {tmp_path}/x: cannot write there (Read-only file system)"
    assert os.listdir(tmp_path) == []


# claim_folder, remove_dead_temporaries


def _temp_of(path, pid):
    """temp_path(path) as process `pid` would name it."""
    return temp_path(path).replace(f".{os.getpid()}-", f".{pid}-")


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_claim_is_refused_while_another_process_holds_it_and_free_once_it_dies(tmp_path):
    folder = tmp_path / "out"
    with _claimed_by_another_process(folder) as holder:
        live = _temp_of(str(folder / "train_data_joint.npy"), holder.pid)  # the holder's write in progress
        open(live, "wb").write(b"being written")
        with pytest.raises(FolderInUseError) as info:
            claim_folder(str(folder), "a second writer")
        message = str(info.value)
        assert message.startswith(f"{folder} is in use by pid {holder.pid} ") and "a test holder" in message
        assert os.path.exists(live)  # not the refused one's to remove
        holder.kill()  # SIGKILL: no clean-up runs
        holder.wait()
        claim = claim_folder(str(folder), "a second writer")  # the kernel dropped the lock
        try:
            assert not os.path.exists(live)  # now a dead writer's: removed
            assert f"pid {os.getpid()} " in (folder / ".claim").read_text()
        finally:
            claim.release()
    again = claim_folder(str(folder), "a third writer")  # release frees it at once
    again.release()


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP])
def test_where_the_filesystem_keeps_no_locks_claims_and_appends_go_on_with_one_warning(
    tmp_path, monkeypatch, caplog, code
):
    """NFS without a lock manager (ENOLCK), Lustre without -o flock (ENOSYS), some FUSE mounts."""

    def no_locks(fd, flags):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.fcntl, "flock", no_locks)
    monkeypatch.setattr(files, "_warned_unlocked", set())
    folder, log_path = str(tmp_path / "out"), str(tmp_path / "out" / "log.jsonl")
    os.makedirs(folder)
    elsewhere = _temp_of(os.path.join(folder, "checkpoint_last.pth.tar"), 4_000_000)  # another machine's writer
    open(elsewhere, "wb").close()
    claim_folder(folder, "a run").release()
    assert "a run" in (tmp_path / "out" / ".claim").read_text()
    assert os.path.exists(elsewhere)  # no lock, so no knowing whether its writer is dead
    for epoch in range(3):
        append_lines(log_path, [{"epoch": epoch}])
    assert [json.loads(line)["epoch"] for line in open(log_path)] == [0, 1, 2]
    warnings = [r.getMessage() for r in caplog.records if "keeps no file locks" in r.getMessage()]
    assert warnings == [
        f"{folder}: its filesystem keeps no file locks ({os.strerror(code)}), so a second run into the folder "
        "is not refused, and interrupted writes' temporary files stay",
        f"{log_path}: its filesystem keeps no file locks ({os.strerror(code)}), so appends of several processes "
        "at once may interleave",
    ]


def test_a_lock_error_of_another_kind_is_raised(tmp_path, monkeypatch):
    def failing(fd, flags):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(files.fcntl, "flock", failing)
    with pytest.raises(OSError, match="Input/output error"):
        claim_folder(str(tmp_path / "out"), "a run")


def test_a_claim_ends_with_its_holder_though_a_forked_child_lives_on(tmp_path):
    """DataLoader workers are forked children of the run: killed by hand, the run's claim must end at once,
    not when its orphaned workers notice (seconds later)."""
    code = (
        "import os, sys, time\nfrom dataset.files import claim_folder\n"
        'claim = claim_folder(sys.argv[1], "a test holder")\n'
        "if os.fork() == 0:  # the child says its pid once it runs\n"
        "    print(os.getpid(), flush=True)\n    time.sleep(120)\n    os._exit(0)\n"
        "time.sleep(120)\n"
    )
    folder = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(FolderInUseError):
            claim_folder(str(folder), "a second writer")
        holder.kill()
        holder.wait()
        os.kill(child, 0)  # the child lives on
        claim_folder(str(folder), "a second writer").release()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)


def test_claimer_removes_only_temporary_files(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    pid = _dead_pid()
    dead = [_temp_of(str(folder / name), pid) for name in ("train_data_joint.npy", "settings.json", "log")]
    for path in dead:
        open(path, "wb").write(b"left by a killed writer")
    running = temp_path(str(folder / "features.npz"))  # a live writer's (this process), outside the claim
    open(running, "wb").write(b"being written")
    user = {
        ".tmp-notes.txt": b"my notes",
        ".tmp-123-train_label.pkl": b"not ours",
        "results.json": b"{}",
        ".tmp": b"",
        "train_data_joint.npy.tmp": b"a user copy",
    }
    for name, data in user.items():
        (folder / name).write_bytes(data)
    tempish_dir = folder / os.path.basename(temp_path(str(folder / "x.npy")))  # a folder named like one
    tempish_dir.mkdir()
    (tempish_dir / "inside.txt").write_text("kept\n")
    (folder / ".tmp-x").mkdir()
    link = folder / os.path.basename(temp_path(str(folder / "y.npy")))
    link.symlink_to(folder / "results.json")
    claim = claim_folder(str(folder), "a test")
    claim.release()
    assert not any(os.path.lexists(p) for p in dead)
    assert {n: (folder / n).read_bytes() for n in user} == user
    assert (tempish_dir / "inside.txt").read_text() == "kept\n" and (folder / ".tmp-x").is_dir()
    assert link.is_symlink()
    kept = [".claim", tempish_dir.name, ".tmp-x", link.name, os.path.basename(running), *user]
    assert sorted(os.listdir(folder)) == sorted(kept)
    remove_dead_temporaries(str(folder))  # a second sweep: nothing more
    assert sorted(os.listdir(folder)) == sorted(kept)


# keep_aside


def test_keep_aside_moves_files_into_a_dated_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text(name)
    day = time.strftime("%Y%m%d")
    aside = keep_aside(str(folder), ["a.txt", "b.txt"], "previous")
    assert os.path.dirname(aside) == str(folder)
    match = re.fullmatch(r"previous-(\d{8})-(\d{6})", os.path.basename(aside))
    assert match and match.group(1) in (day, time.strftime("%Y%m%d"))  # today (also across midnight)
    assert sorted(os.listdir(aside)) == ["a.txt", "b.txt"]
    assert [(pathlib.Path(aside) / n).read_text() for n in ("a.txt", "b.txt")] == ["a.txt", "b.txt"]
    assert sorted(os.listdir(folder)) == sorted(["c.txt", os.path.basename(aside)])


def test_keep_aside_never_overwrites_an_existing_aside_folder(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    monkeypatch.setattr(files.time, "strftime", lambda fmt, *a: "20240101-000000")  # the same second
    for existing in ("previous-20240101-000000", "previous-20240101-000000-2"):
        (folder / existing).mkdir()
        (folder / existing / "a.txt").write_text(f"kept in {existing}")
    (folder / "a.txt").write_text("new")
    aside = keep_aside(str(folder), ["a.txt"], "previous")
    assert aside == str(folder / "previous-20240101-000000-3")
    assert (folder / "previous-20240101-000000-3" / "a.txt").read_text() == "new"
    for existing in ("previous-20240101-000000", "previous-20240101-000000-2"):
        assert os.listdir(folder / existing) == ["a.txt"]
        assert (folder / existing / "a.txt").read_text() == f"kept in {existing}"
    (folder / "b.txt").write_text("b")
    assert keep_aside(str(folder), ["b.txt"], "previous") == str(folder / "previous-20240101-000000-4")


# converters: one per output folder, and the user's files left alone


def _ucla_raw(folder):
    generate_ucla(str(folder), classes=3, subjects=2, cameras=3, seed=1)
    return str(folder)


def _ucla(raw, out):
    ucla_gendata.main(["--data-path", raw, "--out-folder", str(out), "--workers", "1", "--no-progress"])


def test_a_converter_refuses_a_run_folder_and_reconverts_its_own(tmp_path):
    raw, run = _ucla_raw(tmp_path / "all_sqe"), tmp_path / "run"
    run.mkdir()
    files = {"settings.json": '{"optim": {"lr": 0.05}}\n', "log.jsonl": "", "checkpoint_last.pth.tar": "w"}
    for name, text in files.items():
        (run / name).write_text(text)
    with pytest.raises(SystemExit) as info:
        _ucla(raw, run)
    assert info.value.code == (
        f"error: {run} holds the files of a training or evaluation run "
        "(checkpoint_last.pth.tar, log.jsonl, settings.json); convert into a folder of its own"
    )
    assert {n: (run / n).read_text() for n in files} == files
    assert sorted(os.listdir(run)) == sorted([*files, ".claim"])  # the claim file stays, as every claim's
    out = tmp_path / "ucla"
    _ucla(raw, out)
    _ucla(raw, out)  # its own settings.json is a converter's: converted again
    assert json.loads((out / "settings.json").read_text())["counts"]


def test_two_converters_cannot_write_into_one_folder(tmp_path):
    raw, out = _ucla_raw(tmp_path / "all_sqe"), tmp_path / "ucla"
    with _claimed_by_another_process(out) as holder:
        live = _temp_of(str(out / "train_data_joint.npy"), holder.pid)  # the first converter's work
        open(live, "wb").write(b"being written")
        with pytest.raises(SystemExit) as info:
            _ucla(raw, out)
        assert isinstance(info.value.code, str)  # a message: exit status 1
        assert info.value.code.startswith(f"error: {out} is in use by pid {holder.pid} ")
        assert isinstance(info.value.__context__, FolderInUseError)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "data_gen.ucla_gendata",
                "--data-path",
                raw,
                "--out-folder",
                str(out),
                "--workers",
                "1",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            cwd=str(tmp_path),
        )
        assert run.returncode == 1 and f"error: {out} is in use by pid {holder.pid} " in run.stderr
        assert sorted(os.listdir(out)) == [".claim", os.path.basename(live)]  # nothing written, nothing removed
    _ucla(raw, out)  # the holder gone, it converts
    assert not os.path.exists(live) and os.path.isfile(out / "train_data_joint.npy")


def test_conversion_leaves_the_users_dot_tmp_files_and_folders(tmp_path):
    raw, out = _ucla_raw(tmp_path / "all_sqe"), tmp_path / "ucla"
    out.mkdir()
    (out / ".tmp-notes.txt").write_text("my notes\n")
    (out / ".tmp-x").mkdir()
    (out / ".tmp-x" / "kept.txt").write_text("kept\n")
    dead = _temp_of(str(out / "val_label.pkl"), _dead_pid())  # a killed conversion's
    open(dead, "wb").write(b"partial")
    _ucla(raw, out)
    assert (out / ".tmp-notes.txt").read_text() == "my notes\n"
    assert (out / ".tmp-x" / "kept.txt").read_text() == "kept\n"
    assert not os.path.exists(dead)
    assert sorted(n for n in os.listdir(out) if n.startswith(".")) == [".claim", ".tmp-notes.txt", ".tmp-x"]
    _ucla(raw, out)  # and again on a rerun
    assert (out / ".tmp-notes.txt").read_text() == "my notes\n" and (out / ".tmp-x" / "kept.txt").is_file()


def test_a_folder_that_cannot_be_claimed_is_named_with_the_reason(tmp_path, monkeypatch):
    # root ignores folder modes, so the file system's refusal is simulated where it happens
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "makedirs", refuse)
    with pytest.raises(OSError) as info:
        claim_folder(str(tmp_path / "ro" / "run"), "a test")
    assert str(info.value) == f"{tmp_path}/ro/run: cannot write there (Operation not permitted)"


def test_a_full_disk_met_while_claiming_names_the_folder_and_leaves_it_free(tmp_path, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "pwrite", full)
    with pytest.raises(NoSpaceError) as info:
        claim_folder(str(tmp_path / "run"), "a test")
    assert str(info.value) == f"no space left on {tmp_path}/run: No space left on device; nothing was written"
    monkeypatch.undo()
    claim_folder(str(tmp_path / "run"), "a test").release()  # the failed claim was let go


def test_without_fcntl_the_import_says_the_code_needs_posix():
    """On Windows `import fcntl` fails: the first import of the project says what it needs."""
    code = "import sys; sys.modules['fcntl'] = None; import pretrain_cmd"
    root = pathlib.Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 1
    assert "ImportError: this code needs Linux or another POSIX system (Windows: WSL)" in done.stderr


def test_a_fingerprint_samples_the_whole_file_and_its_size(tmp_path):
    zeros = bytearray(1 << 20)
    (tmp_path / "a").write_bytes(zeros)
    late = bytearray(zeros)
    late[(1 << 20) * 63 // 64] = 1  # in the last of the 64 sampled blocks
    (tmp_path / "b").write_bytes(late)
    (tmp_path / "c").write_bytes(zeros + bytes(64))  # the same blocks, 64 bytes longer
    prints = [file_fingerprint(str(tmp_path / name)) for name in "abc"]
    assert len(set(prints)) == 3 and all(len(p) == 16 for p in prints)
    assert file_fingerprint(str(tmp_path / "a")) == prints[0]  # and the same bytes, the same fingerprint


def test_folder_settings_is_a_dict_or_nothing(tmp_path):
    assert folder_settings(str(tmp_path)) is None
    (tmp_path / "settings.json").write_text("[1, 2]")
    assert folder_settings(str(tmp_path)) is None
    (tmp_path / "settings.json").write_text('{"counts": {"train": 1}}')
    assert folder_settings(str(tmp_path)) == {"counts": {"train": 1}}
