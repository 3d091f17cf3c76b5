"""A killed pull (issue 9 item 3): its build workers die with it, the next pull removes its
temporary files. The pull is really killed (SIGKILL, then SIGTERM) while it builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited (nobody reaped it yet)


def _tmps(home: Path) -> list[Path]:
    return sorted((home / "store").glob("*/.*.tmp"))


@pytest.fixture()
def data(shared_data: Path, tmp_path: Path) -> Path:
    """Three releases whose builds take seconds each: ICD-10-PCS 2025, ICD-9-CM v32, HCPCS 2019."""
    d = tmp_path / "data"
    for rel in ("icd10pcs/2025/2025-icd-10-pcs-order-file-long-and-abbreviated-titles.zip",
                "icd10pcs/2025/icd10pcs_tables_2025.xml", "hcpcs/2019-jan/2019-Alpha-Numeric-HCPCS-File.zip",
                *(f"icd9cm/v32/CMS32_DESC_{a}_{b}.txt" for a in ("LONG", "SHORT") for b in ("DX", "SG"))):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).symlink_to(shared_data / rel)
    return d


def _start(home: Path, data: Path) -> subprocess.Popen:
    env = dict(os.environ, MEDCODES_HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "medcodes.cli", "pull", "--from", str(data), "--jobs", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _building(proc: subprocess.Popen, home: Path, timeout: float = 120) -> list[int]:
    """Wait until the pull's workers are writing their release files; their pids."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        workers = [p for p in _children(proc.pid) if _alive(p)]
        if len(workers) >= 2 and any(p.stat().st_size > 0 for p in _tmps(home)):
            return workers
        time.sleep(0.1)
    raise AssertionError("the pull never started building")


def _gone(pids: list[int], timeout: float = 15) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_sigkill_workers_die_and_next_pull_cleans(tmp_path: Path, data: Path) -> None:
    home = tmp_path / "home"
    proc = _start(home, data)
    workers = _building(proc, home)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert _gone(workers), f"workers {workers} outlived the killed pull"
    left = _tmps(home)
    assert left, "a SIGKILLed pull cannot clean up: its .tmp files are there"
    assert not list((home / "store").glob("*/*.sqlite"))  # nothing half-built was installed
    # the next pull (here of the ICD-9-CM files only) removes them
    env = dict(os.environ, MEDCODES_HOME=str(home))
    done = subprocess.run([sys.executable, "-m", "medcodes.cli", "pull", "--from", str(data / "icd9cm")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"removed {len(left)} temporary file(s) left by an interrupted pull" in done.stderr
    assert _tmps(home) == []
    assert [p.name for p in (home / "store" / "icd9cm").glob("*.sqlite")] == ["v32.sqlite"]


def test_sigterm_stops_workers_and_removes_its_files(tmp_path: Path, data: Path) -> None:
    home = tmp_path / "home"
    proc = _start(home, data)
    workers = _building(proc, home)
    os.kill(proc.pid, signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert _gone(workers)
    assert _tmps(home) == []
