"""The environment files: ranges, exact-version locks and envs/abc.yaml agree, and every
package the code imports is declared."""

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys

from conftest import PROJECT, r_env_pins
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK_SCRIPT = PROJECT / "envs" / "lock.py"
OPTIONAL = {"obstore"}  # bench_stream.py compares against it where it is installed
ENV_FILES = [
    "requirements.txt",
    "requirements-test.txt",
    "requirements.lock",
    "requirements-test.lock",
    "envs/abc.yaml",
]


def check_locks(root=PROJECT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LOCK_SCRIPT), "--check", "--root", str(root)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_locks_and_conda_env_agree_with_the_ranges():
    result = check_locks()
    assert result.returncode == 0, result.stderr


def test_lock_check_names_each_drift(tmp_path):
    for name in ENV_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, tmp_path / name)
    conda = tmp_path / "envs" / "abc.yaml"
    conda.write_text(re.sub(r"numpy==\S+", "numpy==1.0", conda.read_text()))
    ranges = tmp_path / "requirements.txt"
    ranges.write_text(ranges.read_text().replace("h5py>=3.10", "h5py>=99"))
    test_lock = tmp_path / "requirements-test.lock"
    test_lock.write_text(re.sub(r"(?m)^pandas==\S+", "pandas==2.0.0", test_lock.read_text()))

    result = check_locks(tmp_path)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert len(problems) == 5, result.stderr
    assert "requirements.lock pins h5py==" in problems[0] and "outside h5py>=99" in problems[0]
    assert "requirements-test.lock pins h5py==" in result.stderr  # -r requirements.txt
    assert "requirements-test.lock pins pandas==2.0.0, requirements.lock" in result.stderr
    assert "envs/abc.yaml does not list exactly the pins of requirements.lock" in result.stderr
    assert all(line.endswith("run `python envs/lock.py`") for line in problems)


def imported_modules(paths) -> set[str]:
    """Top-level names of the modules imported by these Python files and Snakefiles."""
    names = set()
    for path in paths:
        text = path.read_text()
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names.add(node.module.split(".")[0])
        else:  # Snakemake files: import lines only
            names |= set(re.findall(r"(?m)^\s*(?:from|import)\s+(\w+)", text))
    return names


def undeclared(paths, requirements) -> list[str]:
    """Third-party modules these files import whose distribution the range file lacks."""
    ranges = PROJECT / requirements
    declared = {
        canonicalize_name(Requirement(line.split("#")[0]).name)
        for line in ranges.read_text().splitlines()
        + (PROJECT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("-r")
    }
    ignored = {"abc_downsample", "conftest"} | {p.stem for p in paths} | OPTIONAL
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(imported_modules(paths) - set(sys.stdlib_module_names) - ignored):
        names = {canonicalize_name(d) for d in distributions.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} (from {', '.join(sorted(names))})")
    return missing


def test_every_package_the_workflow_imports_is_a_runtime_requirement():
    code = [*(PROJECT / "scripts").rglob("*.py"), PROJECT / "Snakefile"]
    code += (PROJECT / "workflow").rglob("*.smk")
    assert undeclared(code, "requirements.txt") == []


def test_every_package_the_tests_import_is_a_test_requirement():
    code = [*(PROJECT / "tests").rglob("*.py"), *(PROJECT / "benchmarks").rglob("*.py")]
    assert undeclared(code, "requirements-test.txt") == []


def test_the_r_environment_pins_every_package():
    """envs/r.yaml: exact versions (tests/e2e/test_export.py checks them against the R
    that runs the R tests); SeuratObject 4, whose objects Seurat 4 and 5 both read."""
    pins = r_env_pins()
    assert set(pins) == {"r-base", "r-matrix", "r-hdf5r", "r-seuratobject",
                         "bioconductor-singlecellexperiment"}  # fmt: skip
    assert all(re.fullmatch(r"\d+(\.\d+)*(_\d+)?", version) for version in pins.values()), pins
    assert pins["r-seuratobject"].startswith("4.")
