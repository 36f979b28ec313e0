"""The whole workflow through a real single-node SLURM with --profile profiles/slurm.

Runs only with RUN_SLURM_TESTS=1 (.ci/run sets it once the Debian SLURM packages and the
plugin are installed): it needs root and starts munged, MariaDB, slurmdbd, slurmctld and
slurmd on 127.0.0.1 (tests/e2e/slurm/start_local_slurm.sh), with every config, key and state in
a temporary directory found through SLURM_CONF: the machine's /etc is neither read nor written.
With RUN_SLURM_TESTS=1 a missing prerequisite fails the test instead of skipping it.

One pass, about 2 minutes: the offline demo (synthetic release) runs locally for reference
and, at the same time, through SLURM with two injected job failures (one subset job fails
once and is resubmitted, another fails every attempt); a rerun then finishes the work.
"""

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import DEFAULT_OUTPUT, PROJECT, run_snakemake

PLUGIN_DIR = PROJECT / ".slurm-plugin"
SCRIPTS = PROJECT / "tests" / "e2e" / "slurm"
PACKAGES = "slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
CLUSTER_RULES = {"sample_cells", "subset_matrix", "concat"}
HOST_RULES = {"download_metadata", "download_matrix"}  # with abc.download_on_host: true
FAULT_RULE = "subset_matrix"
RUN_TIMEOUT = 300

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("RUN_SLURM_TESTS") != "1",
        reason="real SLURM test: set RUN_SLURM_TESTS=1 (root; Debian packages "
        f"{PACKAGES}; pip install --no-deps --target .slurm-plugin -r requirements-slurm.txt)",
    ),
]

# Runs in every Python process of a SLURM job (the jobs inherit PYTHONPATH). In the job's
# first process, the plugin's "slurm-jobstep" snakemake, it makes the first subset_matrix
# job to start fail on every attempt and the second fail on its first attempt only: real
# SLURM job failures (state FAILED), picked without knowing the matrix names in advance.
SITECUSTOMIZE = """
import os, sys
_dir = os.environ.get("ABC_TEST_FAULT_DIR")
if _dir and "slurm-jobstep" in sys.argv and "--target-jobs" in sys.argv:
    _target = sys.argv[sys.argv.index("--target-jobs") + 1]
    _attempt = sys.argv[sys.argv.index("--attempt") + 1]

    def _claim(name):
        try:
            fd = os.open(os.path.join(_dir, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(fd, _target.encode())
        os.close(fd)
        return True

    def _claimed_by_me(name):
        with open(os.path.join(_dir, name)) as f:
            return f.read() == _target

    if _target.startswith(os.environ["ABC_TEST_FAULT_RULE"] + ":") and (
        _claim("always") or _claimed_by_me("always")
        or (_attempt == "1" and _claim("once"))
    ):
        sys.stderr.write(f"injected failure: {_target} attempt {_attempt}\\n")
        os._exit(3)
"""


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "the SLURM test must run as root (it starts the daemons)"
    binaries = ("slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "munged", "mariadbd")
    missing = [b for b in binaries if not (shutil.which(b) or Path("/usr/sbin", b).exists())]
    if missing:
        return f"missing {' '.join(missing)}: apt-get install --no-install-recommends {PACKAGES}"
    if not (PLUGIN_DIR / "snakemake_executor_plugin_slurm").is_dir():
        return "no plugin: pip install --no-deps --target .slurm-plugin -r requirements-slurm.txt"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    """The environment of a running single-node SLURM (SLURM_CONF, PATH), whose config and
    state are in a fresh dir, removed afterwards."""
    problem = missing_prerequisites()
    if problem:
        pytest.fail(f"RUN_SLURM_TESTS=1 but {problem}")
    # not under pytest's tmp: that dir is 0700 and MariaDB runs as the mysql user
    base = Path(tempfile.mkdtemp(prefix="abc-slurm-"))
    base.chmod(0o755)
    started = subprocess.run(
        [SCRIPTS / "start_local_slurm.sh", base], capture_output=True, text=True, timeout=180
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"SLURM did not start:\n{started.stdout}\n{started.stderr}")
        yield cluster_env(base)
    finally:
        subprocess.run([SCRIPTS / "stop_local_slurm.sh", base], timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)


def cluster_env(base: Path) -> dict:
    """What every SLURM command needs to reach the test cluster (see start_local_slurm.sh)."""
    return {
        "SLURM_CONF": str(base / "etc" / "slurm.conf"),
        "PATH": os.pathsep.join([str(base / "bin"), os.environ["PATH"]]),
    }


def demo_config() -> dict:
    """config/demo.yaml (relative paths: each run stays in its own workdir), downloads on
    the submit host: the setting for compute nodes without internet, and two SLURM job
    levels fewer (each costs 30-50 s here: three Python start-ups per job on two cores)."""
    config = yaml.safe_load((PROJECT / "config" / "demo.yaml").read_text())
    config["abc"]["download_on_host"] = True
    return config


def site_profile(directory: Path) -> Path:
    """profiles/slurm with what a site edits (account, partition) and a fast first check."""
    profile = yaml.safe_load((PROJECT / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"].update(slurm_account="root", slurm_partition="debug")
    profile["slurm-init-seconds-before-status-checks"] = 2  # plugin default 40 s
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return directory


def slurm_env(cluster: dict, inject_dir: Path, fault_dir: Path | None) -> dict:
    paths = [str(PLUGIN_DIR), str(inject_dir), os.environ.get("PYTHONPATH", "")]
    env = {**cluster, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    if fault_dir:
        env.update(ABC_TEST_FAULT_DIR=str(fault_dir), ABC_TEST_FAULT_RULE=FAULT_RULE)
    return env


def parse_jobs(log: str) -> list[dict]:
    """The jobs a snakemake log shows: rule, local or not, wildcards, resources, SLURM id."""
    jobs, current, slurm_ids = [], None, {}
    for line in log.splitlines():
        header = re.fullmatch(r"(local)?(?:rule|checkpoint) (\w+):", line)
        if header:
            current = {"rule": header[2], "local": bool(header[1]), "fields": {}}
            jobs.append(current)
        elif current is not None and (field := re.fullmatch(r"    (\w+): (.*)", line)):
            current["fields"].setdefault(field[1], field[2])
        else:
            current = None
        submitted = re.match(r"Job (\d+) has been submitted with SLURM jobid (\d+)", line)
        if submitted:
            slurm_ids.setdefault(submitted[1], []).append(submitted[2])
    for job in jobs:
        job["slurm_ids"] = slurm_ids.get(job["fields"]["jobid"], [])
        job["wildcards"] = job["fields"].get("wildcards", "")
        job["resources"] = dict(
            item.split("=", 1) for item in job["fields"].get("resources", "").split(", ") if item
        )
    return jobs


def sacct(cluster: dict, job_ids) -> dict[str, dict]:
    """{SLURM id: {state, comment, req_mem_mb, minutes}} from the accounting database."""
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids),
         "-o", "JobID,State,Comment,ReqMem,Timelimit"],
        capture_output=True, text=True, check=True, env={**os.environ, **cluster}, timeout=60,
    ).stdout  # fmt: skip
    rows = {}
    for line in out.splitlines():
        job_id, state, comment, req_mem, limit = line.split("|")
        rows[job_id] = {
            "state": state.split()[0],  # "CANCELLED by 0" -> "CANCELLED"
            "comment": comment,
            "req_mem_mb": megabytes(req_mem),
            "minutes": minutes(limit),
        }
    return rows


def megabytes(req_mem: str) -> float:
    """sacct's ReqMem ("200M", "8G", "1.50G") in MB."""
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    return round(float(req_mem[:-1]) * scale[req_mem[-1]], 1)


def minutes(limit: str) -> int:
    """sacct's Timelimit ("05:00", "01:00:00", "1-00:00:00") in minutes."""
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    hours, mins = (parts[-3] if len(parts) == 3 else 0), parts[-2]
    return int(days or 0) * 1440 + hours * 60 + mins


def run_through_slurm(workdir, profile, env):
    return run_snakemake(
        workdir, "--profile", str(profile), config=demo_config(), env=env, timeout=RUN_TIMEOUT
    )


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """A local reference run and, at the same time, a SLURM run with injected failures;
    then a SLURM rerun without them."""
    tmp = tmp_path_factory.mktemp("slurm_runs")
    inject_dir, fault_dir = tmp / "inject", tmp / "faults"
    inject_dir.mkdir()
    fault_dir.mkdir()
    (inject_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    profile = site_profile(tmp / "profile")
    with_faults = slurm_env(slurm_cluster, inject_dir, fault_dir)
    with ThreadPoolExecutor(2) as pool:
        local = pool.submit(run_snakemake, tmp / "local", config=demo_config(), timeout=RUN_TIMEOUT)
        failing = pool.submit(run_through_slurm, tmp / "slurm", profile, with_faults)
        local, failing = local.result(), failing.result()
    assert local.returncode == 0, local.stderr[-3000:]
    slurm_dir = tmp / "slurm"
    written_by_failing_run = sorted(
        str(p.relative_to(slurm_dir)) for p in (slurm_dir / OUT_DIR).rglob("*.h5ad")
    )
    rerun = run_through_slurm(tmp / "slurm", profile, slurm_env(slurm_cluster, inject_dir, None))
    faults = {p.name: p.read_text().split(":", 1)[1] for p in fault_dir.iterdir()}
    return {
        "local_dir": tmp / "local",
        "slurm_dir": tmp / "slurm",
        "failing": failing,
        "rerun": rerun,
        "faults": faults,  # {"always"|"once": "matrix=<label>"}
        "cluster": slurm_cluster,
        "written_by_failing_run": written_by_failing_run,
    }


OUT_DIR = demo_config()["output"]["dir"]


def slurm_jobs(result) -> list[dict]:
    return [job for job in parse_jobs(result.stderr) if not job["local"]]


def output_path(workdir: Path, key: str) -> Path:
    return workdir / OUT_DIR / DEFAULT_OUTPUT[key]


def test_failed_jobs_are_retried_then_the_run_stops_with_the_rest_done(runs):
    failing, faults = runs["failing"], runs["faults"]
    assert set(faults) == {"always", "once"}, failing.stderr[-3000:]
    assert failing.returncode != 0
    written = runs["written_by_failing_run"]
    once_matrix, always_matrix = (faults[k].removeprefix("matrix=") for k in ("once", "always"))
    subsets = f"{OUT_DIR}/subsets"
    assert f"{subsets}/{once_matrix}.h5ad" in written
    assert f"{subsets}/{always_matrix}.h5ad" not in written
    # keep-going: every other subset was written, only the final file is missing
    cells = pd.read_csv(output_path(runs["local_dir"], "cells"))
    n_subsets = cells["feature_matrix_label"].nunique()
    assert len([p for p in written if p.startswith(subsets)]) == n_subsets - 1
    assert f"{OUT_DIR}/{DEFAULT_OUTPUT['expression']}" not in written

    by_wildcards = {
        job["wildcards"]: job for job in slurm_jobs(failing) if job["rule"] == FAULT_RULE
    }
    once_ids, always_ids = (
        by_wildcards[faults["once"]]["slurm_ids"],
        by_wildcards[faults["always"]]["slurm_ids"],
    )
    accounting = sacct(runs["cluster"], once_ids + always_ids)
    # resubmitted as new SLURM jobs: the first attempt failed, the retry completed
    assert [accounting[i]["state"] for i in once_ids] == ["FAILED", "COMPLETED"]
    assert len(always_ids) >= 2
    assert all(accounting[i]["state"] == "FAILED" for i in always_ids)


def test_rerun_after_failure_does_only_the_missing_work(runs):
    rerun, always = runs["rerun"], runs["faults"]["always"]
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    done = sorted((job["rule"], job["wildcards"]) for job in slurm_jobs(rerun))
    assert done == [("concat", ""), (FAULT_RULE, always)]


def test_every_cluster_job_ran_as_a_slurm_job_with_the_rules_resources(runs):
    per_run = [parse_jobs(runs[name].stderr) for name in ("failing", "rerun")]
    jobs = [job for run_jobs in per_run for job in run_jobs if not job["local"]]
    # the work went to SLURM, the downloads stayed on the submit host
    assert {job["rule"] for job in jobs} == CLUSTER_RULES
    host = {job["rule"] for run_jobs in per_run for job in run_jobs if job["local"]}
    assert host >= HOST_RULES and not host & CLUSTER_RULES
    assert all(job["slurm_ids"] for job in jobs), [j for j in jobs if not j["slurm_ids"]]
    accounting = sacct(runs["cluster"], [i for job in jobs for i in job["slurm_ids"]])
    for run_jobs in per_run:
        for job in (job for job in run_jobs if not job["local"]):
            check_slurm_rows(job, accounting, first_mem_mb(run_jobs, job), runs)


def first_mem_mb(run_jobs, job) -> int:
    """A job printed again for its retry shows the retry's memory: take its first."""
    same = [j for j in run_jobs if j["fields"]["jobid"] == job["fields"]["jobid"]]
    return min(int(j["resources"]["mem_mb"]) for j in same)


def check_slurm_rows(job, accounting, mem_mb, runs):
    for attempt, slurm_id in enumerate(job["slurm_ids"], start=1):
        row = accounting[slurm_id]
        assert row["comment"].startswith(f"rule_{job['rule']}"), (job, row)
        # the profile leaves memory and runtime to the rules' own estimates; a subset job
        # asks for more memory on each retry
        scale = attempt if job["rule"] == "subset_matrix" else 1
        assert row["req_mem_mb"] == scale * mem_mb, (job, row)
        assert row["minutes"] == int(job["resources"]["runtime"]), (job, row)
    assert accounting[job["slurm_ids"][-1]]["state"] == "COMPLETED" or (
        job["wildcards"] == runs["faults"]["always"]
    ), job


def test_outputs_equal_a_local_run(runs):
    for key in ("cells", "summary", "levels"):
        slurm, local = (output_path(runs[d], key) for d in ("slurm_dir", "local_dir"))
        assert slurm.read_bytes() == local.read_bytes(), key
    slurm, local = (
        ad.read_h5ad(output_path(runs[d], "expression")) for d in ("slurm_dir", "local_dir")
    )
    assert slurm.shape == local.shape and slurm.shape[0] > 0
    assert slurm.X.dtype == local.X.dtype
    assert (slurm.X != local.X).nnz == 0
    assert slurm.obs.equals(local.obs)
    assert slurm.var.equals(local.var)
    assert yaml.safe_dump(to_plain(slurm.uns)) == yaml.safe_dump(to_plain(local.uns))


def to_plain(value):
    """uns as plain Python values, for an order-insensitive comparison."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
