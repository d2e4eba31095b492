"""One run per run folder: a second process is refused at once, naming the holder's PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import train as train_entry
from lib.core.setup import run_lock_path
from lib.errors import RunFolderError
from lib.utils.run_lock import RunLock, read_holder_pid

REPO = Path(__file__).resolve().parents[1]

# Takes the lock, says so on stdout, and holds it until its stdin closes.
_HOLDER = ("import sys\n"
           "from lib.utils.run_lock import RunLock\n"
           "with RunLock(sys.argv[1]):\n"
           "    print('locked', flush=True)\n"
           "    sys.stdin.read()\n")


@pytest.fixture
def holder():
    """Start a real process that holds the lock file given to the returned function."""
    procs: list[subprocess.Popen] = []

    def start(path: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, path], cwd=REPO, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=30)


def test_second_process_is_refused_naming_the_holder(tmp_path, holder):
    path = str(tmp_path / ".run.lock")
    proc = holder(path)
    assert read_holder_pid(path) == proc.pid
    with pytest.raises(RunFolderError, match=f"in use by process {proc.pid}"):
        RunLock(path, "run folder x").acquire()
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert not os.path.exists(path), "the holder removes its lock file on release"
    with RunLock(path) as lock:
        assert lock.held and read_holder_pid(path) == os.getpid()
    assert not os.path.exists(path)


def test_lock_of_a_killed_holder_does_not_block(tmp_path, holder):
    path = str(tmp_path / ".run.lock")
    proc = holder(path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert os.path.exists(path), "a killed holder leaves its file behind"
    with RunLock(path) as lock:
        assert lock.held


def test_lock_file_that_is_a_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    link = tmp_path / ".run.lock"
    link.symlink_to(target)
    with pytest.raises(RunFolderError, match="symlink"):
        RunLock(str(link)).acquire()
    assert target.read_text() == "keep\n"


def test_train_into_a_locked_run_folder_is_refused(aist_3d, tmp_path, holder):
    """A run that holds OUTPUT_DIR/EXP_NAME stops a second train.py before it writes."""
    out = tmp_path / "results"
    out.mkdir()
    proc = holder(run_lock_path(str(out / "smoke")))
    argv = ["--cfg", "configs/smoke.yaml", "--dataset_name", "aist", "--estimator", "vibe",
            "--body_representation", "3D", "DATASET.BASE_DIR", aist_3d,
            "OUTPUT_DIR", str(out), "EXP_NAME", "smoke"]
    with pytest.raises(RunFolderError, match=f"smoke is in use by process {proc.pid}"):
        train_entry.main(argv)
    assert not (out / "smoke").exists()
    best = out / "smoke" / "checkpoints" / "best.pth"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"the holder's checkpoint")
    (out / "smoke" / "run.json").write_text('{"project": "MotionRefineNet"}')
    with pytest.raises(RunFolderError, match=f"process {proc.pid}"):
        train_entry.main([*argv, "--overwrite"])
    with pytest.raises(RunFolderError, match=f"process {proc.pid}"):
        train_entry.main([*argv, "--resume"])  # appended after the overrides, as users do
    assert best.read_bytes() == b"the holder's checkpoint"


def test_process_train_into_a_locked_run_folder_exits_2_naming_the_pid(aist_3d, tmp_path,
                                                                       holder):
    """As the user sees it: one line, exit code 2, no traceback, nothing written."""
    out = tmp_path / "results"
    out.mkdir()
    proc = holder(run_lock_path(str(out / "smoke")))
    second = subprocess.run(
        [sys.executable, "train.py", "--cfg", "configs/smoke.yaml", "--dataset_name", "aist",
         "--estimator", "vibe", "--body_representation", "3D", "DATASET.BASE_DIR", aist_3d,
         "OUTPUT_DIR", str(out), "EXP_NAME", "smoke"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert second.returncode == 2, second.stderr
    assert "Traceback" not in second.stderr
    assert f"in use by process {proc.pid}" in second.stderr.strip().splitlines()[-1]
    assert sorted(os.listdir(out)) == [".smoke.lock"]


# Takes the lock, forks a child that outlives it (as a DataLoader worker can), and is killed.
# The child reports once it runs Python code, i.e. after its at-fork handlers: only then is the
# kill of the parent the case under test (a loaded machine may schedule the child late).
_FORKING_HOLDER = ("import os, sys, time\n"
                   "from lib.utils.run_lock import RunLock\n"
                   "lock = RunLock(sys.argv[1]).acquire()\n"
                   "ready_read, ready_write = os.pipe()\n"
                   "child = os.fork()\n"
                   "if child == 0:\n"
                   "    os.write(ready_write, b'r')\n"
                   "    time.sleep(60)\n"
                   "    os._exit(0)\n"
                   "os.read(ready_read, 1)\n"
                   "print(child, flush=True)\n"
                   "sys.stdin.read()\n")


def test_forked_child_does_not_keep_a_killed_holders_lock(tmp_path):
    path = str(tmp_path / ".run.lock")
    proc = subprocess.Popen([sys.executable, "-c", _FORKING_HOLDER, path], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    child = int(proc.stdout.readline())
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        with RunLock(path) as lock:  # the child is still alive, but holds no copy of the lock
            assert lock.held
    finally:
        os.kill(child, signal.SIGKILL)
