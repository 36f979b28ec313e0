"""What the Snakemake workflow catalog looks for: the entry at workflow/Snakefile (the
top-level Snakefile includes it), config/README.md, a usage file with its mandatory keys,
a LICENSE; and a bare `snakemake --lint` (how the catalog lints, no --configfile) that
passes without the network."""

import shutil
import subprocess
import sys

import yaml
from conftest import PROJECT, clean_env


def test_the_catalog_finds_the_workflow_where_it_looks():
    assert (PROJECT / "workflow" / "Snakefile").is_file()
    assert "workflow/Snakefile" in (PROJECT / "Snakefile").read_text()
    assert (PROJECT / "config" / "README.md").is_file()
    assert (PROJECT / "config" / "config.yaml").is_file()
    assert "MIT License" in (PROJECT / "LICENSE").read_text()


def test_the_usage_file_has_the_catalog_keys():
    usage = yaml.safe_load((PROJECT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert {"mandatory-flags", "software-stack-deployment", "report"} <= set(usage)
    assert usage["software-stack-deployment"]["conda"] is True and usage["report"] is True
    assert {"desc", "flags"} <= set(usage["mandatory-flags"])


def test_a_bare_lint_passes_offline(tmp_path):
    """From a copy of the project, as the catalog runs it: no config file, no network (an
    endpoint nothing listens on); the pinned release's manifest ships with the workflow."""
    copy = tmp_path / "project"
    copy.mkdir()
    for part in ("Snakefile", "workflow", "scripts", "config", "envs", "profiles"):
        source = PROJECT / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / part)
    env = clean_env({"AWS_EC2_METADATA_DISABLED": "true", "HTTPS_PROXY": "http://127.0.0.1:9"})
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=copy,
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Congratulations" in output, output[-3000:]


def test_test_files_of_the_two_tiers_have_their_own_names():
    """pytest imports test files by their basename (no packages under tests/): a name in
    both tiers stops the whole run's collection, which the fast tier alone never shows."""
    tiers = [PROJECT / "tests" / tier for tier in ("unit", "e2e")]
    names = [path.name for tier in tiers for path in tier.glob("test_*.py")]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
