"""The report's first screen: what was made, from what, what was lost per class, the cost.

``write_landing`` writes an HTML fragment (no <html>) that the report's workflow
description (workflow/report/workflow.rst) embeds as raw HTML: headline cards, the cells per
group figure (embedded as a data URI) and the cells kept per class.
"""

import base64
import io
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from abc_downsample.atomic import atomic_path
from abc_downsample.cells_csv import MATRIX
from abc_downsample.plan.card import MODES, mode_text, read_plan
from abc_downsample.report import plots
from abc_downsample.report.html import escape
from abc_downsample.subset.local import parse_summary
from abc_downsample.units import size_text

FIGURE_SIZE = (7.0, 3.7)  # inches at plots.DPI: shown unscaled next to the class table
URI_LINE = 4000  # characters per line of the embedded figure (docutils' limit is 10,000)
SHOWN_TERMS = 8  # terms a level lists by name under the floor

# The report centres its landing text in a narrow column beside the rule graph: widen it and
# start it at the top. The rules apply only while this fragment is on screen.
LANDING_CSS = """
div.h-screen:has(#abc-landing){align-items:flex-start;justify-content:flex-start}
div.py-2:has(#abc-landing){flex:1 1 auto;min-width:0}
.prose:has(#abc-landing){max-width:none}
#abc-landing{font-size:14px;line-height:1.35}
#abc-landing .cards{display:flex;gap:10px;flex-wrap:wrap;margin:8px 0 12px;max-width:1200px}
#abc-landing .card{border:1px solid #cbd5e1;border-radius:6px;padding:6px 12px;
flex:1 1 0;min-width:150px}
#abc-landing .card b{display:block;font-size:22px;color:#0f172a}
#abc-landing .card span{display:block;color:#475569;font-size:12px}
#abc-landing .row{display:flex;gap:14px;align-items:flex-start;flex-wrap:wrap}
#abc-landing img{margin:0;max-width:100%}
#abc-landing .classes{max-height:420px;overflow:auto;border:1px solid #e2e8f0}
#abc-landing table{margin:0;font-size:12px;border-collapse:collapse}
#abc-landing th{position:sticky;top:0;background:#f1f5f9}
#abc-landing th,#abc-landing td{padding:1px 8px;border-bottom:1px solid #e2e8f0}
#abc-landing td.n{text-align:right;font-variant-numeric:tabular-nums;min-width:4.5em}
#abc-landing p{margin:4px 0}
"""


def dataset_matrices(manifest, matrices, variant: str) -> tuple[list[str], list[str]]:
    """The directories (dataset_labels) of the matrices read, and every matrix file of the
    variant in them: what "files read" counts against (not other datasets' files)."""
    directories = sorted({manifest.matrix_file(m, variant).directory for m in matrices})
    in_them = [
        e.name
        for e in manifest.entries
        if e.kind == "expression_matrices" and e.variant == variant and e.directory in directories
    ]
    return directories, in_them


def transfers(logs_dir, matrices) -> dict[str, list[tuple[int, int]]]:
    """How each subset job read its matrix (cache, download, stream): (bytes read, bytes of
    the selected rows) from the job's last log line; a job without one is not counted."""
    found: dict[str, list[tuple[int, int]]] = {}
    for matrix in matrices:
        path = Path(logs_dir, "subset_matrix", f"{matrix}.log")
        try:
            stats = parse_summary(path.read_text(errors="replace"))
        except OSError:
            continue
        if stats is not None:
            rows = stats.bytes_read if stats.row_bytes is None else stats.row_bytes
            found.setdefault(stats.transfer, []).append((stats.bytes_read, rows))
    return found


def transfer_text(found: dict[str, list[tuple[int, int]]], file_bytes: int) -> str:
    """E.g. "76.4 MB of rows streamed from 20 files, plus 3.1 MB of headers, obs and var;
    4 from the cache; 1.2 GB of files in all". A stream job reads the files' headers, obs
    and var apart from the rows (on a small file they can outweigh them): counted apart."""
    parts = []
    if "stream" in found:
        n = len(found["stream"])
        rows = sum(r for _, r in found["stream"])
        other = sum(t for t, _ in found["stream"]) - rows
        # read in blocks around the rows: on files of a few MB (the demo) more than their size
        why = " (read in blocks: more than such small files hold)" if other > file_bytes else ""
        parts.append(
            f"{size_text(rows)} of rows streamed from {n} file{'s' * (n != 1)}, plus "
            f"{size_text(other)} of headers, obs and var{why}"
        )
    for how, words in (("download", "downloaded whole"), ("cache", "from the cache")):
        if how in found:
            parts.append(f"{len(found[how])} {words}")
    return f"{'; '.join(parts) or 'read'}; {size_text(file_bytes)} of files in all"


def figure_uri(summary: pd.DataFrame, min_size: int, group_name: str) -> str:
    """The cells per group figure, small enough for the first screen, as a data URI."""
    ordered = summary.sort_values(["size", "selected"], ascending=False)
    fig, ax = plt.subplots(figsize=FIGURE_SIZE, layout="constrained")
    size, selected = ordered["size"].to_numpy(), ordered["selected"].to_numpy()
    plots.draw_rank(ax, size, selected, min_size, group_name)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=plots.DPI, format="png")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    # in lines: docutils refuses longer ones; a browser drops newlines from a URL
    lines = [encoded[i : i + URI_LINE] for i in range(0, len(encoded), URI_LINE)]
    return "data:image/png;base64," + "\n".join(lines)


def _card(value: str, caption: str, detail: str) -> str:
    return (
        f"<div class='card'><b>{escape(value)}</b>{escape(caption)}"
        f"<span>{escape(detail)}</span></div>"
    )


def headline_cards(summary, counts, source: dict, bench: pd.DataFrame, group_name: str) -> str:
    """Cells, groups kept whole, files and bytes read, and the cost, as four boxes."""
    before, after = int(summary["size"].sum()), int(summary["selected"].sum())
    whole = summary["kept_whole"].to_numpy(bool)
    share = f"{after / before:.1%} of the cells" if before else "no cells"
    why = (
        f"every cell of {group_name}s under {source['min_size']} cells"
        if source["min_size"] is not None
        else "every cell of the group in the given list"
    )
    cards = [
        _card(f"{after:,} of {before:,}", "cells kept", share),
        _card(
            f"{whole.sum():,} of {len(summary):,}",
            f"{group_name}s kept whole",
            f"{why}; {int(summary.loc[whole, 'selected'].sum()):,} cells",
        ),
        _card(
            f"{len(counts)} of {source['dataset_matrices']}",
            f"matrix files of {', '.join(source['directories'])} read",
            source["bytes_text"],
        ),
        _card(*_cost(bench)),
    ]
    if source.get("plan"):
        cards.append(_card(*plan_card(source["plan"])))
    return f"<div class='cards'>{''.join(cards)}</div>"


def plan_card(plan: dict) -> tuple[str, str, str]:
    """The plan made before the run (``plan.card``): the configured mode's bytes and time,
    the other modes', disk and the largest job's memory."""
    chosen = plan["transfer"]
    modes = plan["modes"]
    others = "; ".join(f"{mode} {mode_text(modes[mode])}" for mode in MODES if mode != chosen)
    disk, memory = plan["disk"], plan["memory"]
    detail = (
        f"{others}; cache +{size_text(disk['cache'][chosen])}, {plan['data_dir']} "
        f"~{size_text(disk['data'])}; the largest job asks for {memory['largest_mb']:,} MB "
        f"({memory['largest_job']})"
    )
    return mode_text(modes[chosen]), f"planned before the run ({chosen})", detail


def _cost(bench: pd.DataFrame) -> tuple[str, str, str]:
    if bench.empty:
        return "–", "run cost", "no benchmark files"
    peak = bench.loc[bench["max_rss_mb"].idxmax()] if bench["max_rss_mb"].notna().any() else None
    memory = f"peak {peak['max_rss_mb']:,.0f} MB ({peak['rule']})" if peak is not None else ""
    minutes = bench["seconds"].sum() / 60
    spent = f"{minutes:,.1f} job-min" if minutes < 120 else f"{minutes / 60:,.1f} job-hours"
    return spent, "run cost", f"{len(bench)} jobs measured; {memory}"


def class_table(levels: pd.DataFrame) -> str:
    """Cells per top-level term (class for WMB) before and after, with the share kept as a
    bar behind the number."""
    top = plots.top_level(levels)
    rows = levels[levels["level"] == top].sort_values("term")
    if rows.empty:
        return "<p>No taxonomy classes in the sampling levels table.</p>"
    body = []
    for term, before, after in rows[["term", "cells_before", "cells_after"]].itertuples(
        index=False
    ):
        kept = after / before if before else 0.0
        bar = f"background:linear-gradient(90deg,#fecaca {kept:.1%},transparent {kept:.1%})"
        body.append(
            f"\n<tr><td>{escape(str(term))}</td><td class='n'>{before:,}</td>"
            f"<td class='n'>{after:,}</td><td class='n' style='{bar}'>{kept:.1%}</td></tr>"
        )
    head = f"<tr><th>{escape(top)}</th><th>before</th><th>after</th><th>kept</th></tr>"
    return (
        f"<div><b>What each {escape(top)} kept</b> ({len(rows)} terms)"
        f"<div class='classes'><table><thead>{head}</thead><tbody>{''.join(body)}</tbody>"
        "</table></div></div>"
    )


def floor_text(min_size: int, min_per_group: int, group_name: str) -> tuple[str, str]:
    """The coverage table's title and note: against the floor where one is set, else
    against ``min_cluster_size`` (as ``summaries.coverage_floor``), saying how to set one."""
    if min_per_group:
        return (
            f"Terms with a {group_name} under the floor",
            f"kept fewer than min(size, {min_per_group:,}) cells; "
            f"sampling.min_cells_per_group = {min_per_group}",
        )
    return (
        f"Terms with a {group_name} that kept fewer than min(size, {min_size:,}) cells",
        f"no floor is set: sampling.min_cells_per_group: {min_size} would keep at least "
        f"that many of every {group_name}",
    )


def coverage_table(levels: pd.DataFrame, title: str, note: str) -> str:
    """Per taxonomy level, the terms that have a group kept under the floor
    (``groups_below_floor`` of the levels table), the fewest kept first."""
    if "groups_below_floor" not in levels.columns:
        return ""
    body = []
    for level, view in levels.groupby("level", sort=False):
        below = view[view["groups_below_floor"] > 0].sort_values(["smallest_group_after", "term"])
        shown = ", ".join(
            f"{term} ({kept:,})"
            for term, kept in below[["term", "smallest_group_after"]].head(SHOWN_TERMS).values
        )
        more = f" and {len(below) - SHOWN_TERMS:,} more" if len(below) > SHOWN_TERMS else ""
        body.append(
            f"<tr><td>{escape(str(level))}</td><td class='n'>{len(below):,} of {len(view):,}"
            f"</td><td>{escape(shown + more) or 'none'}</td></tr>"
        )
    head = "<tr><th>level</th><th>terms</th><th>which (fewest cells a group kept)</th></tr>"
    return (
        f"<div><b>{escape(title)}</b> ({escape(note)})<table><thead>{head}</thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def landing_fragment(summary, levels, counts, source: dict, bench, group_name: str) -> str:
    """The whole first screen, as lines of HTML (for an indented rst raw block)."""
    figure = figure_uri(summary, source["min_size"], group_name)
    coverage = ""
    if source["min_size"] is not None:  # drawn, not a given list: how far below the floor
        title, note = floor_text(source["min_size"], source.get("min_per_group", 0), group_name)
        coverage = coverage_table(levels, title, note)
    parts = [
        f"<style>{' '.join(LANDING_CSS.split())}</style><div id='abc-landing'>",
        f"<p>{escape(source['run_text'])}</p>",
        headline_cards(summary, counts, source, bench, group_name),
        "<div class='row'>",
        f"<img alt='cells per {escape(group_name)} before and after sampling' src='{figure}'>",
        class_table(levels),
        "</div>",
        coverage,
        "</div>",
    ]
    return "\n".join(parts)


def source_facts(manifest, counts, provenance: dict, logs_dir, groups: str,
                 plan_json=None) -> dict:  # fmt: skip
    """What the run did and read, for the cards: from the result's provenance (what the run
    recorded), the subset jobs' logs and the plan made before the run (``plan_json``),
    never from the config of the command."""
    variant = provenance["variant"]
    matrices = list(counts[MATRIX])
    directories, in_them = dataset_matrices(manifest, matrices, variant)
    file_bytes = sum(manifest.matrix_file(m, variant).size for m in matrices)
    given = bool(provenance.get("cells_file"))
    return {
        "dataset_matrices": len(in_them),
        "directories": directories,
        "bytes_text": transfer_text(transfers(logs_dir, matrices), file_bytes),
        "min_size": provenance.get("min_cluster_size"),  # none for a given cell list
        "min_per_group": 0 if given else provenance.get("min_cells_per_group") or 0,
        "plan": read_plan(plan_json) if plan_json else None,
        "run_text": run_text(provenance, groups),
    }


def run_text(provenance: dict, groups: str) -> str:
    """What the run did, in a sentence: the data, then how its cells were chosen."""
    if provenance.get("synthetic"):
        data = (
            "Offline demo: a synthetic release in the format of the Allen Brain Cell Atlas "
            "(made-up cells and genes, not atlas data)"
        )
    else:
        data = f"The Allen Brain Cell Atlas, dataset {provenance['dataset']}"
    values = "log2(CPM+1) values" if provenance["variant"] == "log2" else "raw counts"
    head = f"{data}, release {provenance['release']}, {values}"
    filters = provenance.get("filters")
    only = f", only cells with {_filters_text(filters)}" if filters else ""
    if provenance.get("cells_file"):
        return (
            f"{head}: cells from {provenance['cells_file']} (not sampled{only}), grouped by "
            f"{provenance['cluster_column']}."
        )
    within = f", among the cells of {provenance['within']}" if provenance.get("within") else ""
    floor = provenance.get("min_cells_per_group")
    floor = f"; every group keeps at least min(size, {floor}) cells" if floor else ""
    return (
        f"{head}, sampled to target_cells = {provenance['target_cells']:,} with the "
        f"{provenance['strategy']} strategy over {provenance['cluster_column']} (seed "
        f"{provenance['seed']}{only}{within}): {groups} under "
        f"{provenance['min_cluster_size']} cells are kept whole{floor}."
    )


def _filters_text(filters: dict) -> str:
    return "; ".join(f"{column} in {', '.join(map(str, v))}" for column, v in filters.items())


def write_landing(out, fragment: str) -> None:
    with atomic_path(out, suffix=".html") as tmp:
        tmp.write_text(fragment + "\n", encoding="utf-8")
