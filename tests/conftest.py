"""Shared fixtures: a synthetic release, a moto S3 server holding it, a snakemake runner.

Two tiers: ``tests/unit`` (fast: the developer's loop, ``pytest tests/unit``) and
``tests/e2e`` (the real snakemake command against a local S3 server, fault injection,
SLURM, R, a browser), marked ``e2e`` here by their folder.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from s3_server import BUCKET, MotoServer, upload_tree

from abc_downsample.cache.layout import write_receipt
from abc_downsample.cache.store import open_store
from abc_downsample.cache.verify import file_md5
from abc_downsample.config_check import abc_with_defaults, default_config
from abc_downsample.demo.release import write_release
from abc_downsample.release.manifest import FileEntry

PROJECT = Path(__file__).resolve().parent.parent
E2E = Path(__file__).resolve().parent / "e2e"
ERROR = "abc-downsample: error:"  # how every one-line error starts
RESULT = "data/downsampled_expression.h5ad"  # the result, under a run's work dir
SYNTHETIC_ARGS = {"release": "20250531", "n_cells": 6000, "n_genes": 120, "seed": 0}


# The config's defaults (config/config.yaml), the one copy tests take transport settings from.
DEFAULT_ABC = abc_with_defaults({})
DEFAULT_OUTPUT = default_config()["output"]  # the results' file names inside output.dir
DEMO = yaml.safe_load((PROJECT / "config" / "demo.yaml").read_text())
# the demo's outputs as the workflow names them: each file inside output.dir
DEMO_OUT = {key: name if key == "dir" else f"{DEMO['output']['dir']}/{name}"
            for key, name in {**DEFAULT_OUTPUT, **DEMO["output"]}.items()}  # fmt: skip


def store_of(bucket: str, endpoint_url: str | None = None, **settings):
    """``open_store`` with the config's default retries, pool and timeout, or ``settings``."""
    download = DEFAULT_ABC["download"]
    defaults = {
        "retries": download["retries"],
        "max_pool": DEFAULT_ABC["stream"]["max_concurrency"],
        "read_timeout": download["timeout_s"],
        "anonymous": DEFAULT_ABC["anonymous"],
    }
    return open_store(bucket, endpoint_url, **{**defaults, **settings})


def fetch_settings(**settings) -> dict:
    """``fetch_file``'s transfer settings: the config's defaults, or ``settings``."""
    download = DEFAULT_ABC["download"]
    defaults = {
        "part_size": download["part_size_mb"] * 2**20,
        "max_concurrency": download["max_concurrency"],
        "retries": download["retries"],
    }
    return {**defaults, **settings}


def stream_settings(**settings) -> dict:
    """``RemoteCsrSource``'s settings: the config's defaults, or ``settings``."""
    stream = DEFAULT_ABC["stream"]
    defaults = {
        "max_concurrency": stream["max_concurrency"],
        "merge_gap": stream["merge_gap_kb"] * 1024,
    }
    return {**defaults, **settings}


def md5(path) -> str:
    """A file's MD5 (hex), as a manifest lists it."""
    return file_md5(path).hexdigest()


def moto_config(
    endpoint_url: str, abc: dict | None = None, output: dict | None = None, **sampling
) -> dict:
    """A run's config against the moto S3 server at ``endpoint_url`` (the synthetic
    release's bucket): 1500 cells, min_cluster_size 50, or the ``sampling`` keys given;
    ``abc`` adds to the abc block, ``output`` is the output block."""
    config = {
        "abc": {"bucket": BUCKET, "endpoint_url": endpoint_url, **(abc or {})},
        "sampling": {"target_cells": 1500, "min_cluster_size": 50, **sampling},
    }
    return config if output is None else {**config, "output": output}


def pytest_collection_modifyitems(items):
    """Everything under tests/e2e is the e2e tier (``-m "not e2e"`` is the fast one)."""
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """In-process retries wait 1/25 of the real backoff: the fault servers answer at once
    (the real waits are exercised by the e2e tier's snakemake runs)."""
    from abc_downsample.cache import store

    monkeypatch.setattr(store, "BACKOFF_S", 0.01)


@pytest.fixture(scope="session")
def synthetic_release(tmp_path_factory) -> dict:
    """The default synthetic release, generated once; the dict of ``write_release``."""
    return write_release(tmp_path_factory.mktemp("synthetic") / "bucket", **SYNTHETIC_ARGS)


@pytest.fixture(scope="session")
def s3_endpoint(synthetic_release) -> str:
    """URL of a moto S3 server whose bucket allen-brain-cell-atlas holds the release."""
    server = MotoServer()
    try:
        upload_tree(server.url, synthetic_release["root"])
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_bucket(synthetic_release) -> dict:
    """A moto server for one test module (tests that publish into it or count its bytes),
    behind our proxy: {"proxy", "server", "release"}."""
    from fault_proxy import FaultProxy

    server = MotoServer()
    upload_tree(server.url, synthetic_release["root"])
    proxy = FaultProxy(server.url)
    yield {"proxy": proxy, "server": server, "release": synthetic_release}
    proxy.close()
    server.stop()


@pytest.fixture
def rule_logging():
    """Logging as a rule script sets it up (rule_io.setup_logging), undone afterwards."""
    import logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def snakefile() -> Path:
    """The top-level Snakefile, as users run it (it includes workflow/Snakefile; the
    workflow profile profiles/default is found next to it)."""
    return PROJECT / "Snakefile"


def clean_env(extra: dict | None = None) -> dict:
    """This process's environment without AWS endpoint settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(extra or {})
    return env


def run_snakemake(
    workdir, *args, config: dict | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the real snakemake CLI on the project's Snakefile in ``workdir``.

    ``config`` is written to ``workdir/test_config.yaml`` and given after the project's
    config/config.yaml, so it only needs the keys that differ. Output is captured (text).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    configfiles = [str(PROJECT / "config" / "config.yaml")]
    if config:
        test_config = workdir / "test_config.yaml"
        test_config.write_text(yaml.safe_dump(config, sort_keys=False))
        configfiles.append(str(test_config))
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(snakefile()),
        "--directory", str(workdir),
        "--cores", "2",
        *args,
        "--configfile", *configfiles,  # last: it takes every word after it
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, env=clean_env(env), timeout=timeout
    )


def snakemake_ok(workdir, *args, config) -> str:
    """Run snakemake, fail with its output if it fails; return stdout + stderr."""
    result = run_snakemake(workdir, "--show-failed-logs", *args, config=config)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


@pytest.fixture(name="run_snakemake")
def run_snakemake_fixture():
    """The ``run_snakemake`` helper, for tests that prefer fixtures to imports."""
    return run_snakemake


@pytest.fixture
def proxy(s3):
    """Our fault-injecting proxy in front of the requesting module's ``s3`` endpoint."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(s3)
    yield proxy
    proxy.close()


def local_abc(workdir) -> dict:
    """The config's ``abc`` block for rule-script tests: ``workdir`` is both the bucket (a
    local mirror) and the cache, so cached inputs are verified with no network."""
    from abc_downsample.config_check import abc_with_defaults

    local = {"cache_dir": str(workdir), "bucket": str(workdir), "endpoint_url": None}
    return abc_with_defaults({**local, "download": {"retries": 1}})


def receipts_for(workdir, *names) -> dict:
    """Receipts (as the download rules write them) for files in ``workdir``, by name."""
    receipts = {}
    for name in names:
        path = Path(workdir) / name
        entry = FileEntry("", "", "", None, name, path.stat().st_size, md5(path), "")
        receipts[name] = Path(workdir) / "receipts" / f"{name}.json"
        write_receipt(receipts[name], entry)
    return receipts


def filled_cache(release: dict, cache: Path) -> Path:
    """The release's files in ``cache`` as another tool leaves them: no stamps."""
    root = Path(release["root"])
    for relative in [*release["files"], release["manifest"]]:
        (cache / relative).parent.mkdir(parents=True, exist_ok=True)
        os.link(root / relative, cache / relative)
    return cache


def r_env_pins() -> dict[str, str]:
    """{conda package: version} of envs/r.yaml (rule r_objects' environment)."""
    dependencies = yaml.safe_load((PROJECT / "envs" / "r.yaml").read_text())["dependencies"]
    return dict(dependency.split("=", 1) for dependency in dependencies)
