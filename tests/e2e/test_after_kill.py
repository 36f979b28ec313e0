"""Stopping a run: Ctrl-C ends our rule scripts with one line, and after kill -9 the README's
advice (--unlock once) plus the workflow profile (profiles/default) finish the run."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import DEMO_OUT, PROJECT, clean_env, snakefile

INTERRUPTED = "abc-downsample: interrupted"
CELLS = Path(DEMO_OUT["cells"])
RESULT = Path(DEMO_OUT["expression"])

# a rule script as Snakemake runs it (from .snakemake/scripts/), stopped at a known point
IN_IMPORTS = """
import abc_downsample, time
print("ready", flush=True)
time.sleep(60)
"""
IN_MAIN = """
import sys, time
from abc_downsample.rule_io import run

def main():
    print("ready", flush=True)
    time.sleep(60)

run(main, sys.argv[1])
"""


def start(command, cwd=None) -> subprocess.Popen:
    """Start ``command`` in a session of its own, with Ctrl-C's SIGINT not ignored."""
    return subprocess.Popen(
        command, cwd=cwd, env=clean_env({"PYTHONPATH": str(PROJECT / "scripts")}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


@pytest.mark.parametrize("body", [IN_IMPORTS, IN_MAIN], ids=["in_imports", "in_main"])
def test_ctrl_c_in_a_rule_script_prints_one_line(tmp_path, body):
    script = tmp_path / ".snakemake" / "scripts" / "tmpabc.rule.py"
    script.parent.mkdir(parents=True)
    script.write_text(body)
    log = tmp_path / "rule.log"
    process = start([sys.executable, str(script), str(log)])
    assert process.stdout.readline() == "ready\n"
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, stderr = process.communicate(timeout=60)
    assert stderr.splitlines() == [INTERRUPTED]
    assert process.returncode == -signal.SIGINT  # Snakemake still sees an interrupted job
    if body is IN_MAIN:
        assert log.read_text().rstrip().endswith("ERROR interrupted")


def snakemake_command(workdir: Path, *args) -> list[str]:
    """The demo (config/demo.yaml: offline) in ``workdir``, as a user runs it."""
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(snakefile()),
        "--directory", str(workdir), "--cores", "2", *args,
        "--configfile", str(PROJECT / "config" / "demo.yaml"),
    ]  # fmt: skip


def run_demo(workdir: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_command(workdir, *args), cwd=workdir, capture_output=True, text=True,
        env=clean_env(), timeout=300,
    )  # fmt: skip


def stop_when(workdir: Path, ready, sig: signal.Signals, *args) -> subprocess.Popen:
    """Run the demo; send ``sig`` to all its processes as soon as ``ready(process)``."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = start(snakemake_command(workdir, *args), cwd=workdir)
    deadline = time.monotonic() + 240
    while not ready(process):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never reached the point to stop it"
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGSTOP)  # the whole group at once, then the signal
    os.killpg(process.pid, sig)
    os.killpg(process.pid, signal.SIGCONT)
    return process


def in_our_code(process: subprocess.Popen) -> bool:
    """A subset_matrix job is past Snakemake's preamble, in our imports (h5py is loaded)."""
    with contextlib.suppress(psutil.Error):
        for job in psutil.Process(process.pid).children(recursive=True):
            if any("subset_matrix.py" in word for word in job.cmdline()) and any(
                "h5py" in m.path for m in job.memory_maps()
            ):
                return True
    return False


def test_ctrl_c_during_a_run_ends_our_job_with_one_line(tmp_path):
    # one job at a time: a job just starting would be in Snakemake's own preamble, whose
    # imports print Snakemake's traceback (not ours to change)
    process = stop_when(tmp_path, in_our_code, signal.SIGINT, "--cores", "1")
    stdout, stderr = process.communicate(timeout=120)
    output = stdout + stderr
    assert process.returncode != 0
    assert output.count("died with <Signals.SIGINT: 2>") == 1, output[-4000:]
    assert INTERRUPTED in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-4000:]


def test_after_kill_9_unlock_then_a_plain_rerun_finishes(tmp_path):
    workdir = tmp_path / "run"
    killed = stop_when(workdir, lambda _: (workdir / CELLS).exists(), signal.SIGKILL)
    killed.communicate(timeout=60)
    # the state kill -9 leaves: a finished-looking output Snakemake marks incomplete, a lock
    assert (workdir / CELLS).exists()
    assert list((workdir / ".snakemake" / "incomplete").iterdir())

    locked = run_demo(workdir)
    assert locked.returncode != 0
    assert "--unlock" in locked.stderr.strip().splitlines()[-1]  # the README's advice
    assert run_demo(workdir, "--unlock").returncode == 0
    orphan = workdir / "demo" / "data" / ".downsampled_expression.h5ad.tmp-999999999.h5ad"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half a file of a writer killed earlier")

    # without the workflow profile, Snakemake stops at the incomplete output
    bare = shutil.copytree(workdir, tmp_path / "bare", symlinks=True)
    without_profile = run_demo(bare, "--workflow-profile", "none")
    assert without_profile.returncode != 0
    assert "incomplete" in without_profile.stderr

    rerun = run_demo(workdir)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "workflow specific profile" in rerun.stderr and "profiles/default" in rerun.stderr
    assert (workdir / RESULT).stat().st_size > 0
    assert not list((workdir / ".snakemake" / "incomplete").iterdir())
    assert not orphan.exists(), "the killed writer's temporary file stays"
