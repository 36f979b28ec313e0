"""Snakemake's start-up (every run, a dry run too) imports what the workflow's files import
at their top: none of them may pull in pandas, h5py or numpy (~0.5 s, issue 25)."""

import re
import subprocess
import sys

from conftest import PROJECT

HEAVY = ("pandas", "h5py", "numpy", "pyarrow", "scipy", "anndata")


def top_level_imports() -> list[str]:
    """The ``from abc_downsample... import`` lines at the top level of the rule files."""
    lines, workflow = [], PROJECT / "workflow"
    for path in [workflow / "Snakefile", *(workflow / "rules").glob("*.smk")]:
        lines += re.findall(r"^(from abc_downsample\S* import .+)$", path.read_text(), re.M)
    return sorted(set(lines))


def test_the_workflow_files_import_no_heavy_library():
    imports = top_level_imports()
    assert any("resources" in line for line in imports) and len(imports) > 5
    code = "\n".join(["import sys", f"sys.path.insert(0, {str(PROJECT / 'scripts')!r})", *imports,
                      f"print(sorted(set(sys.modules) & set({HEAVY!r})))"])  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
