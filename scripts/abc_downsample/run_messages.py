"""The few lines a run says on the terminal: what the sample needs, what was made, what failed.

Read from the run's small outputs (the sampling summary, the cell list) and its logs, so
that what is said is what the files hold. Every function here is safe to call from
Snakemake's ``onsuccess``/``onerror`` handlers: a missing or unreadable file means a line
less, never an exception.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from abc_downsample.cells_csv import MATRIX
from abc_downsample.errors import SHOWN
from abc_downsample.resources import sample_counts
from abc_downsample.rule_io import PREFIX

if TYPE_CHECKING:  # pandas where a run ends: Snakemake's start-up imports this module
    import pandas as pd

ERROR_MARK = f"{PREFIX}: error:"
FAILED_RULE = re.compile(r"^Error in rule (\S+):$")
FAILED_LOG = re.compile(r"^\s+log: (.+?) \(check log file")
CLOCK_SLACK_S = 2.0  # a log written this long before the run started still counts


def group_name(cluster_column: str) -> str:
    """How figures call a sampling group: 'cluster' for cluster_alias, else the column."""
    return "cluster" if cluster_column == "cluster_alias" else cluster_column


def groups_name(cluster_column: str) -> str:
    """'clusters' for cluster_alias, else '<column> groups'."""
    return "clusters" if cluster_column == "cluster_alias" else f"{cluster_column} groups"


def sample_figures(summary: pd.DataFrame, matrices: int) -> dict:
    """Cells before/after, groups, groups kept whole and matrix files of a sample (its
    summary, and how many matrix files its cells are in)."""
    kept_whole = summary["kept_whole"].astype(str).str.lower().isin(["true", "1"])
    return {
        "before": int(summary["size"].sum()),
        "after": int(summary["selected"].sum()),
        "groups": len(summary),
        "kept_whole": int(kept_whole.sum()),
        "matrices": matrices,
    }


def read_sample_figures(summary_csv, cells_csv) -> dict:
    """`sample_figures` of a sample's files; its matrices from `resources.sample_counts`,
    which reads the cell list once a process (the plan and the Snakefile count them too)."""
    import pandas as pd

    summary = pd.read_csv(summary_csv, usecols=["size", "selected", "kept_whole"])
    return sample_figures(summary, len(sample_counts(cells_csv)))


def cells_and_groups(fig: dict, groups: str) -> str:
    """E.g. "1,500 of 6,000 cells (25.0%), 12 of 40 clusters kept whole" (``fig``:
    `sample_figures`)."""
    share = f" ({fig['after'] / fig['before']:.1%})" if fig["before"] else ""
    return (
        f"{fig['after']:,} of {fig['before']:,} cells{share}, "
        f"{fig['kept_whole']:,} of {fig['groups']:,} {groups} kept whole"
    )


def sample_line(sample, cluster_column: str) -> str:
    """What the sampling job says once: the sample (a ``sampling.Sample``), and how many
    matrix files it needs."""
    fig = sample_figures(sample.summary, int(sample.cells[MATRIX].nunique()))
    files = "file" if fig["matrices"] == 1 else "files"
    return (
        f"sample: {cells_and_groups(fig, groups_name(cluster_column))}; "
        f"it needs {fig['matrices']} matrix {files} (one subset job each)"
    )


def success_lines(output: dict, cluster_column: str) -> list[str]:
    """One or two lines on what a finished run made; none if it made no sample."""
    try:
        fig = read_sample_figures(output["summary"], output["cells"])
    except (OSError, ValueError, KeyError):
        return []
    files = "file" if fig["matrices"] == 1 else "files"
    made = (
        f"{PREFIX}: done: {cells_and_groups(fig, groups_name(cluster_column))}, "
        f"from {fig['matrices']} matrix {files}"
    )
    result = output["expression"]
    if _newer_or_same(result, output["summary"]):  # made from this sample
        where = (
            f"{PREFIX}: result: {result} ({os.path.getsize(result) / 1e6:,.1f} MB); "
            "report: the same command with --report report.html"
        )
    else:
        where = f"{PREFIX}: sample: {output['cells']} ({result} is not built from it yet)"
    return [made, where]


def dry_run_lines(matrices: dict | None, old_sample: bool) -> list[str]:
    """What a dry-run adds to Snakemake's job list. ``matrices``: for each matrix file the
    current sample needs, (cells, its subset is made, it is in the cache); None while no
    sample of the run's settings exists (``old_sample``: one of other settings does)."""
    if matrices is None:
        why = "the sampling settings changed" if old_sample else "there is no sample yet"
        return [
            f"{PREFIX}: dry-run: sampling runs first ({why}); the matrix files it needs, "
            "one subset job each, are known only after it, so the jobs above are not all"
        ]
    cells = sum(n for n, _, _ in matrices.values())
    files = "file" if len(matrices) == 1 else "files"
    todo = [
        f"{m} ({n:,} cells, {'in the cache' if cached else 'to fetch'})"
        for m, (n, made, cached) in matrices.items()
        if not made
    ]
    if not todo:
        rest = "every subset is made"
    else:
        listed = ", ".join(todo[:SHOWN]) + (f" and {len(todo) - SHOWN} more" * (len(todo) > SHOWN))
        rest = f"{len(todo)} subset{'s' * (len(todo) != 1)} to make: {listed}"
    return [
        f"{PREFIX}: dry-run: the sample ({cells:,} cells) needs {len(matrices)} matrix "
        f"{files}; {rest}"
    ]


def plan_lines(plan_text) -> list[str]:
    """The plan's lines (``data/plan.txt``), for the end of ``snakemake plan``."""
    try:
        lines = Path(plan_text).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [f"{PREFIX}: {line}" for line in lines if line.strip()]


def _newer_or_same(path, than) -> bool:
    try:
        return os.path.getmtime(path) >= os.path.getmtime(than)
    except OSError:
        return False


def error_lines_of_logs(logs_dir, since: float) -> list[str]:
    """The one-line errors in the logs written since ``since`` (a time.time()), in order."""
    found = []
    for path in sorted(Path(logs_dir).rglob("*.log")) if os.path.isdir(logs_dir) else []:
        try:
            if path.stat().st_mtime < since - CLOCK_SLACK_S:
                continue
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            at = line.find(ERROR_MARK)
            if at >= 0 and line[at:].strip() not in found:
                found.append(line[at:].strip())
    return found


def failed_jobs_of_snakemake_log(snakemake_log) -> list[str]:
    """'rule X failed: see its log Y' for each failed job of Snakemake's own log."""
    try:
        lines = Path(snakemake_log).read_text(errors="replace").splitlines()
    except (OSError, TypeError):
        return []
    failed, rule = [], None
    for line in lines:
        if match := FAILED_RULE.match(line):
            rule = match.group(1)
            failed.append(f"{ERROR_MARK} rule {rule} failed: see the error above")
        elif rule and (match := FAILED_LOG.match(line)):
            failed[-1] = f"{ERROR_MARK} rule {rule} failed: see its log {match.group(1)}"
            rule = None
    return list(dict.fromkeys(failed))


def failure_lines(logs_dir, since: float, snakemake_log=None) -> list[str]:
    """The one-line errors of this run's failed jobs, else which rules failed."""
    return error_lines_of_logs(logs_dir, since) or failed_jobs_of_snakemake_log(snakemake_log)


def stale_result_lines(output: dict, subsets_dir) -> list[str]:
    """After a failed run: a result left without the sample it was made from (Snakemake
    removes a failed sampling job's outputs, the earlier sample with them)."""
    result = output["expression"]
    if os.path.exists(output["cells"]) or not os.path.exists(result):
        return []
    subsets = sorted(Path(subsets_dir).glob("*.h5ad")) if os.path.isdir(subsets_dir) else []
    what = f"{result} and {len(subsets)} subsets in {subsets_dir}" if subsets else result
    return [
        f"{PREFIX}: note: {what}: made from an earlier sample, which the failed sampling "
        "removed, they no longer match a sample; fix the error below and rerun to rebuild "
        "them"
    ]


def say_last(lines: list[str]) -> None:
    """Print ``lines`` to stderr when the process exits: after Snakemake's own closing lines
    ("Complete log", "Elapsed time", "WorkflowError"), so they are the last on screen."""
    if lines:
        atexit.register(print_lines, list(lines))


def print_lines(lines: list[str]) -> None:
    """Print ``lines`` to stderr now."""
    if lines:
        print("\n".join(lines), file=sys.stderr, flush=True)
