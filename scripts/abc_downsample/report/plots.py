"""Figures and tables for `snakemake --report`: what the sample kept and lost, and its cost.

Every writer takes tables already read (so tests can hand-make them) and an output path,
and writes through ``atomic_path``. ``draw_safely`` turns any failure into a placeholder
that says what went wrong: a broken plot must never fail the run that built the dataset.
"""

import logging
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.ticker
import matplotlib.transforms

matplotlib.use("Agg")  # no display on cluster nodes; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from abc_downsample.atomic import atomic_path  # noqa: E402
from abc_downsample.cells_csv import DATASET_LABEL, MATRIX  # noqa: E402
from abc_downsample.errors import AbcError  # noqa: E402
from abc_downsample.report.html import cards, escape, table, write_page  # noqa: E402

log = logging.getLogger(__name__)

DPI = 110
BEFORE_ALPHA = 0.3
MAX_BARS = 60  # more terms than this are drawn as a scatter, not as bars
FALLBACK_COLORS = plt.get_cmap("tab10").colors


def plain_number(x, _pos=None) -> str:
    """A tick label: thousands separated, as many decimals as the tick has (2.5, 10,000)."""
    return f"{x:,.6f}".rstrip("0").rstrip(".")


NUMBERS = matplotlib.ticker.FuncFormatter(plain_number)
SUMMARY_COLUMNS = ("group", "size", "selected", "kept_whole")
LEVEL_COLUMNS = ("level", "term", "cells_before", "cells_after")
BENCHMARK_COLUMNS = ("s", "max_rss")


# ---- reading -------------------------------------------------------------------------


def _read_csv(path, required, what: str, **kwargs) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""], **kwargs)
    except FileNotFoundError:
        raise AbcError(f"{what} {path} does not exist: rerun the rule that writes it") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise AbcError(f"{what} {path} is not a readable CSV ({err}): rerun its rule") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise AbcError(f"{what} {path} lacks columns {missing}: delete it and rerun")
    return table


def read_summary(path) -> pd.DataFrame:
    """The sampling summary: one row per group (group, size, selected, kept_whole, ...)."""
    table = _read_csv(path, SUMMARY_COLUMNS, "sampling summary", dtype={"group": str})
    table["kept_whole"] = table["kept_whole"].astype(str).str.lower().isin(["true", "1"])
    return table


def read_levels(path) -> pd.DataFrame:
    """Cells per taxonomy term before and after sampling (level, term, cells_before, ...)."""
    return _read_csv(path, LEVEL_COLUMNS, "sampling levels", dtype={"term": str})


def read_matrix_counts(cells_path) -> pd.DataFrame:
    """Sampled cells per matrix file: feature_matrix_label, dataset_label, cells."""
    columns = [MATRIX, DATASET_LABEL]
    wanted = columns.__contains__  # a callable: absent columns get our message, not pandas'
    cells = _read_csv(cells_path, columns, "sampled cells", usecols=wanted, dtype=str)
    return cells.value_counts(columns).rename("cells").reset_index()


def top_level(levels: pd.DataFrame) -> str:
    """The taxonomy's top level: the first of the sampling levels table (class for WMB)."""
    return str(levels["level"].iloc[0]) if len(levels) else "class"


def read_benchmarks(bench_dir) -> pd.DataFrame:
    """One row per benchmark file under ``bench_dir``: rule, job, seconds, max_rss_mb.

    Files live at ``<rule>.tsv`` or ``<rule>/<job...>.tsv``; a job run several times
    (``repeat``) counts with its last line.
    """
    root = Path(bench_dir)
    rows = [_benchmark_row(root, path) for path in sorted(root.rglob("*.tsv"))]
    columns = ["rule", "job", "seconds", "max_rss_mb", "cpu_seconds"]
    return pd.DataFrame([r for r in rows if r is not None], columns=columns)


def _benchmark_row(root: Path, path: Path):
    parts = path.relative_to(root).with_suffix("").parts
    try:
        table = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        log.warning("skipping unreadable benchmark %s: %s", path, err)
        return None
    if table.empty or any(c not in table.columns for c in BENCHMARK_COLUMNS):
        log.warning("skipping benchmark %s: no s/max_rss values", path)
        return None
    last = table.iloc[-1]
    cpu = last.get("cpu_time", np.nan)
    job = "/".join(parts[1:]) if len(parts) > 1 else parts[0]
    return [parts[0], job, float(last["s"]), float(last["max_rss"]), float(cpu)]


# ---- drawing helpers -----------------------------------------------------------------


def draw_safely(out, title: str, draw: Callable[[], None]) -> bool:
    """Run ``draw``; on any error log it and write a placeholder saying so. True if drawn."""
    try:
        draw()
        return True
    except AbcError as err:
        reason = str(err)
    except Exception as err:  # a plot must never fail the run that built the dataset
        log.info("traceback of the failed %s", out, exc_info=True)
        reason = f"{type(err).__name__}: {err}"
    log.warning("%s could not be drawn (a placeholder says why): %s", out, reason)
    write_placeholder(out, title, reason)
    return False


def write_placeholder(out, title: str, reason: str) -> None:
    """A figure (or HTML page, by extension) that names what could not be drawn and why."""
    if str(out).endswith(".html"):
        body = f"<p><b>{escape(title)} could not be made.</b></p><p>{escape(reason)}</p>"
        write_page(out, title, body)
        return
    fig, ax = plt.subplots(figsize=(8, 2.5), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.65, f"{title}: not available", ha="center", fontsize=14, weight="bold")
    ax.text(0.5, 0.3, reason[:300], ha="center", fontsize=10, wrap=True)
    _save(fig, out)


def _save(fig, out) -> None:
    suffix = Path(out).suffix
    with atomic_path(out, suffix=suffix) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format=suffix.lstrip(".") or "png")
    plt.close(fig)


def _log_bins(values: np.ndarray, per_decade: int = 8) -> np.ndarray:
    top = max(float(values.max()), 10.0)
    return np.logspace(0, math.log10(top) + 0.05, int(math.log10(top) * per_decade) + 2)


def term_color_list(terms, colors: dict[str, str] | None) -> list:
    """The atlas colour of each term; a fixed palette for terms it has no colour for."""
    colors = colors or {}
    return [colors.get(t) or FALLBACK_COLORS[i % len(FALLBACK_COLORS)] for i, t in enumerate(terms)]


# ---- figures -------------------------------------------------------------------------


def plot_group_sizes(summary: pd.DataFrame, min_size, out, group_name="cluster") -> None:
    """Group sizes before and after, largest first, on log axes; the rare threshold marked
    (``min_size`` None: a given cell list, no threshold)."""
    if summary.empty:
        raise AbcError("the sampling summary has no groups: check sampling.filters")
    ordered = summary.sort_values(["size", "selected"], ascending=False)
    size, selected = ordered["size"].to_numpy(), ordered["selected"].to_numpy()
    n_rare = int(ordered["kept_whole"].sum())
    fig, (rank_ax, hist_ax) = plt.subplots(
        1, 2, figsize=(13, 5), width_ratios=(3, 2), layout="constrained"
    )
    draw_rank(rank_ax, size, selected, min_size, group_name)
    _draw_size_hist(hist_ax, size, selected, min_size, group_name)
    why = f"under {min_size} cells " if min_size is not None else ""
    fig.suptitle(
        f"{len(ordered):,} {group_name}s: {size.sum():,} → {selected.sum():,} cells; "
        f"{n_rare:,} {group_name}s {why}kept whole",
        fontsize=13,
        weight="bold",
    )
    _save(fig, out)


def draw_rank(ax, size, selected, min_size, group_name) -> None:
    """Group sizes largest first (grey) and the cells taken of each (red), log scale."""
    rank = np.arange(1, len(size) + 1)
    ax.fill_between(rank, 0.8, size, color="0.85", step="mid", label="before sampling")
    shown = selected > 0  # a log axis cannot show empty groups
    marker = "." if len(size) > 500 else "o"
    ax.plot(rank[shown], selected[shown], marker, ms=3, color="tab:red", label="after sampling")
    if min_size is not None:
        ax.axhline(min_size, color="k", ls="--", lw=1, label=f"kept whole below {min_size}")
    ax.set(yscale="log", xlim=(0, len(size) + 1), ylim=(0.8, None))
    ax.set_xlabel(f"{group_name}s, largest first (rank)")
    ax.set_ylabel("cells (log scale)")
    ax.set_title(f"Cells per {group_name}")
    ax.legend(loc="upper right", frameon=False)
    _note_untaken(ax, shown, f"{group_name}s", "left")


def _draw_size_hist(ax, size, selected, min_size, group_name) -> None:
    bins = _log_bins(size)
    ax.hist(size, bins=bins, color="0.6", alpha=0.6, label="before sampling")
    ax.hist(
        selected[selected > 0],
        bins=bins,
        histtype="step",
        lw=2,
        color="tab:red",
        label="after sampling",
    )
    if min_size is not None:
        ax.axvline(min_size, color="k", ls="--", lw=1, label=f"rare threshold ({min_size})")
    ax.set(xscale="log")
    ax.set_xlabel(f"cells per {group_name} (log scale)")
    ax.set_ylabel(f"number of {group_name}s")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"Distribution of {group_name} sizes")
    ax.legend(frameon=False)


def plot_level(levels: pd.DataFrame, level: str, out, colors=None) -> None:
    """Cells per term of a taxonomy level before and after: bars, or a scatter if many."""
    _save(level_figure(levels, level, colors), out)


def level_figure(levels: pd.DataFrame, level: str, colors=None):
    """The figure of `plot_level`, not yet saved."""
    rows = levels[levels["level"] == level].sort_values("term")
    if rows.empty:
        raise AbcError(f"the sampling levels table has no '{level}' rows (no taxonomy?)")
    fill = term_color_list(rows["term"], colors)
    before, after = rows["cells_before"].to_numpy(), rows["cells_after"].to_numpy()
    if len(rows) <= MAX_BARS:
        fig = _level_bars(rows["term"].tolist(), before, after, fill, level)
    else:
        fig = _level_scatter(before, after, fill, level, atlas_colors=bool(colors))
    fig.suptitle(
        f"Cells per {level}: {before.sum():,} before, {after.sum():,} after sampling "
        f"({len(rows):,} {level} terms)",
        fontsize=13,
        weight="bold",
    )
    return fig


def _level_bars(terms, before, after, fill, level):
    y = np.arange(len(terms))[::-1]  # first term at the top
    fig, ax = plt.subplots(figsize=(11, 1.8 + 0.28 * len(terms)), layout="constrained")
    # outlined: a pale atlas colour (e.g. "18 TH Glut") must still show its bar
    light = [matplotlib.colors.to_rgba(c, BEFORE_ALPHA) for c in fill]
    ax.barh(y, before, height=0.8, color=light, edgecolor="0.45", lw=0.6)
    ax.barh(y, after, height=0.45, color=fill, edgecolor="k", lw=0.6)
    # the numbers in a column right of the axes, so the axis ends at the largest bar
    column = matplotlib.transforms.blended_transform_factory(ax.transAxes, ax.transData)
    for yi, b, a in zip(y, before, after, strict=True):
        share = f"{a / b:.0%}" if b else "–"
        text = f"{a:,} of {b:,} ({share})"
        ax.text(1.01, yi, text, transform=column, va="center", fontsize=8)
    ax.set(yticks=y, xscale="log", ylim=(-0.7, len(terms) - 0.3))
    ax.set_xlim(_log_limits(before, after)[0], max(before.max(), 10) * 1.3)
    ax.set_yticklabels(terms, fontsize=9)
    ax.set_xlabel("cells (log scale)")
    ax.set_ylabel(level)
    proxies = [
        plt.Rectangle((0, 0), 1, 1, facecolor=(0.5, 0.5, 0.5, BEFORE_ALPHA), edgecolor="0.45"),
        plt.Rectangle((0, 0), 1, 1, facecolor="0.5", edgecolor="k", lw=0.6),
    ]
    labels = ["before sampling (light, wide)", "after sampling (dark, narrow)"]
    ax.legend(proxies, labels, loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False)
    return fig


def _log_limits(*values) -> tuple[float, float]:
    """Log-axis limits around the positive values: the axis spans the data, not 1 to max."""
    positive = np.concatenate([np.asarray(v, float) for v in values])
    positive = positive[positive > 0]
    if positive.size == 0:
        return 0.8, 10.0
    return max(0.8, positive.min() / 2), max(positive.max(), 10) * 1.5


def _level_scatter(before, after, fill, level, atlas_colors: bool):
    fig, ax = plt.subplots(figsize=(8, 7), layout="constrained")
    fraction = after.sum() / before.sum() if before.sum() else 1.0
    low, top = _log_limits(before, after)
    line = np.array([low, top])
    ax.plot(line, line, color="k", lw=1, label="kept whole (after = before)")
    ax.plot(
        line, line * fraction, color="k", ls="--", lw=1, label=f"overall fraction ({fraction:.1%})"
    )
    shown = (after > 0) & (before > 0)
    ax.scatter(
        before[shown],
        after[shown],
        c=np.asarray(fill, dtype=object)[shown],
        s=22,
        edgecolors="k",
        linewidths=0.3,
        alpha=0.9,
    )
    ax.set(xscale="log", yscale="log", xlim=(low, top), ylim=(low, top))
    ax.set_xlabel(f"cells per {level} before sampling (log scale)")
    ax.set_ylabel(f"cells per {level} after sampling (log scale)")
    colour = f"in the atlas's {level} colour" if atlas_colors else "(colours: a fixed palette)"
    ax.set_title(f"each dot is one {level}, {colour}")
    ax.legend(loc="upper left", frameon=False)
    _note_untaken(ax, shown, f"{level} terms", "right")
    return fig


def _note_untaken(ax, shown: np.ndarray, what: str, corner: str) -> None:
    """How many of the groups or terms (``what``) are off a log plot: no cell taken."""
    if (~shown).any():
        ax.text(0.01 if corner == "left" else 0.99, 0.02,
                f"{(~shown).sum():,} {what} with no cells taken", ha=corner,
                transform=ax.transAxes, fontsize=9)  # fmt: skip


def plot_matrix_counts(counts: pd.DataFrame, out) -> None:
    """Sampled cells taken from each matrix file, coloured by dataset."""
    if counts.empty:
        raise AbcError("no cells were sampled: check sampling.filters")
    counts = counts.sort_values(MATRIX)
    datasets = sorted(counts[DATASET_LABEL].unique())
    palette = dict(zip(datasets, term_color_list(datasets, None), strict=True))
    y = np.arange(len(counts))[::-1]
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.32 * len(counts)), layout="constrained")
    ax.barh(y, counts["cells"], color=counts[DATASET_LABEL].map(palette))
    for yi, n in zip(y, counts["cells"], strict=True):
        ax.text(n, yi, f" {n:,}", va="center", fontsize=9)
    ax.set(yticks=y, ylim=(-0.7, len(counts) - 0.3))
    ax.set_xlim(0, counts["cells"].max() * 1.15)
    ax.xaxis.set_major_formatter(NUMBERS)
    ax.set_yticklabels(counts[MATRIX], fontsize=9)
    ax.set_xlabel("sampled cells")
    ax.set_ylabel("expression matrix file")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[d]) for d in datasets]
    ax.legend(handles, datasets, title="dataset", loc="upper left", bbox_to_anchor=(1, 1))
    fig.suptitle(
        f"Cells taken from each matrix file: {counts['cells'].sum():,} cells "
        f"from {len(counts)} files",
        fontsize=13,
        weight="bold",
    )
    _save(fig, out)


def plot_benchmarks(bench: pd.DataFrame, out) -> None:
    """Wall time and peak memory per rule: a bar for the rule, a dot per job."""
    if bench.empty:
        raise AbcError("no benchmark files were found: did the rules run with benchmark:?")
    rules = sorted(bench["rule"].unique())
    y = {rule: i for i, rule in enumerate(rules[::-1])}
    fig, (t_ax, m_ax) = plt.subplots(
        1, 2, figsize=(12, 1.8 + 0.45 * len(rules)), sharey=True, layout="constrained"
    )
    grouped = bench.groupby("rule")
    _bench_panel(t_ax, grouped["seconds"], y, "sum", "wall time (s): bar = all jobs, dot = one job")
    _bench_panel(m_ax, grouped["max_rss_mb"], y, "max", "peak memory, max RSS (MB)")
    t_ax.set(yticks=list(y.values()))
    t_ax.set_yticklabels([_rule_label(r, len(grouped.get_group(r))) for r in y])
    t_ax.set_ylabel("rule")
    fig.suptitle(
        f"Cost of the run: {bench['seconds'].sum() / 60:.1f} job-minutes in {len(bench)} jobs, "
        f"largest peak {bench['max_rss_mb'].max():,.0f} MB",
        fontsize=13,
        weight="bold",
    )
    _save(fig, out)


def _rule_label(rule: str, jobs: int) -> str:
    return f"{rule} ({jobs} job{'s' if jobs != 1 else ''})"


def _bench_panel(ax, series, y, how: str, xlabel: str) -> None:
    totals = series.agg(how)
    ys = [y[r] for r in totals.index]
    ax.barh(ys, totals.fillna(0).to_numpy(), color="tab:blue", alpha=0.35)
    for rule, values in series:
        ax.plot(values, np.full(len(values), y[rule]), "o", ms=4, color="tab:blue")
    for yi, v in zip(ys, totals, strict=True):
        if not math.isnan(v):
            ax.text(v, yi, f" {v:,.1f}", va="center", fontsize=9)
    ax.set_xlim(0, max(float(totals.max()) if totals.notna().any() else 1.0, 1e-3) * 1.25)
    ax.xaxis.set_major_formatter(NUMBERS)
    ax.set_xlabel(xlabel)


# ---- tables ----------------------------------------------------------------------


def write_summary_table(summary: pd.DataFrame, levels: pd.DataFrame, out, group_name) -> None:
    """The sampling summary as a page: headline numbers, cells per class, every group."""
    before, after = int(summary["size"].sum()), int(summary["selected"].sum())
    whole = summary[summary["kept_whole"]]
    headline = {
        "cells before": f"{before:,}",
        "cells after": f"{after:,}",
        "fraction kept": f"{after / before:.2%}" if before else "–",
        f"{group_name}s": f"{len(summary):,}",
        f"{group_name}s kept whole": f"{len(whole):,}",
        f"cells in {group_name}s kept whole": f"{int(whole['selected'].sum()):,}",
    }
    body = [cards(headline)]
    top = top_level(levels)
    classes = levels[levels["level"] == top].drop(columns="level").sort_values("term")
    if not classes.empty:
        body += [f"<h2>Cells per {top}</h2>", table(classes.rename(columns={"term": top}))]
    groups = summary.sort_values(["size", "group"])
    body += [
        f"<h2>Every {group_name}, smallest first (highlighted: kept whole)</h2>",
        table(groups, groups["kept_whole"].to_numpy()),
    ]
    write_page(out, "Sampling summary", "".join(body))


def write_benchmark_table(bench: pd.DataFrame, out) -> None:
    """Per-rule totals and every job's wall time and peak memory, as a page."""
    if bench.empty:
        raise AbcError("no benchmark files were found: did the rules run with benchmark:?")
    per_rule = bench.groupby("rule").agg(
        jobs=("job", "size"),
        wall_s_total=("seconds", "sum"),
        wall_s_max=("seconds", "max"),
        cpu_s_total=("cpu_seconds", "sum"),
        max_rss_mb=("max_rss_mb", "max"),
    )
    jobs = bench.sort_values(["rule", "job"])
    body = [
        "<h2>Per rule</h2>",
        table(per_rule.reset_index()),
        "<h2>Per job</h2>",
        table(jobs),
    ]
    write_page(out, "Runtime and peak memory", "".join(body))
