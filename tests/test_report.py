"""The report: figures and tables from hand-made tables, then `snakemake --report` of a
synthetic run opened in headless Chromium.

Figures are checked by their pixels (PIL), tables by an independent reading of the inputs.
"""

import base64
import html as html_lib
import io
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import run_snakemake
from PIL import Image

from abc_downsample.dataset.profile import dataset_from_dict, load_dataset
from abc_downsample.errors import AbcError
from abc_downsample.metadata.taxonomy import read_taxonomy
from abc_downsample.report import landing, plots

ATLAS_GREEN = (0, 255, 0)  # a colour no palette of ours uses: seen only if the atlas's is used
TAB_RED = (214, 39, 40)  # matplotlib's tab:red, the "after sampling" points


def summary_table(sizes, min_size=50, fraction=0.1) -> pd.DataFrame:
    sizes = np.asarray(sizes)
    whole = sizes < min_size
    selected = np.where(whole, sizes, np.maximum(1, (sizes * fraction).astype(int)))
    return pd.DataFrame(
        {
            "group": [str(i + 1) for i in range(len(sizes))],
            "size": sizes,
            "selected": selected,
            "kept_whole": whole,
            "class": [f"{i % 3 + 1:02d} class" for i in range(len(sizes))],
            "subclass": [f"{i % 7 + 1:03d} subclass" for i in range(len(sizes))],
        }
    )


def levels_table(summary: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for level in ("class", "subclass"):
        grouped = summary.groupby(level).agg(
            cells_before=("size", "sum"),
            cells_after=("selected", "sum"),
            groups_before=("group", "size"),
            groups_kept_whole=("kept_whole", "sum"),
        )
        frames.append(grouped.reset_index(names="term").assign(level=level))
    return pd.concat(frames)[
        ["level", "term", "cells_before", "cells_after", "groups_before", "groups_kept_whole"]
    ]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)


def count_color(path, rgb, tolerance=6) -> int:
    return int((np.abs(pixels(path).astype(int) - rgb).max(axis=1) <= tolerance).sum())


# ---- figures and tables from hand-made tables ------------------------------------------


def test_group_sizes_figure_shows_before_after_and_threshold(tmp_path):
    sizes = np.random.default_rng(0).lognormal(5, 1.5, 400).astype(int) + 1
    path = tmp_path / "sizes.png"
    plots.plot_group_sizes(summary_table(sizes), 50, path, "cluster")
    width, height = Image.open(path).size
    assert 800 < width < 2000 and 300 < height < 1200
    assert count_color(path, TAB_RED) > 500  # the "after" points are drawn
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically


def test_group_sizes_figure_stays_readable_with_5000_clusters(tmp_path):
    sizes = np.random.default_rng(1).lognormal(5.5, 1.8, 5322).astype(int) + 1
    path = tmp_path / "sizes.png"
    plots.plot_group_sizes(summary_table(sizes), 50, path, "cluster")
    width, height = Image.open(path).size
    assert width < 2000 and height < 1200  # one screen, whatever the number of clusters


def test_level_bars_use_the_atlas_colors(tmp_path):
    summary = summary_table([500, 40, 3000, 20, 800, 90])
    colors = {"01 class": "#00ff00"}
    path = tmp_path / "class.png"
    plots.plot_level(levels_table(summary), "class", path, colors)
    assert count_color(path, ATLAS_GREEN, tolerance=0) > 200
    plots.plot_level(levels_table(summary), "class", path, None)
    assert count_color(path, ATLAS_GREEN, tolerance=0) == 0


def test_level_with_thousands_of_terms_is_a_scatter_of_bounded_size(tmp_path):
    sizes = np.random.default_rng(2).integers(1, 5000, 5322)
    summary = summary_table(sizes).assign(subclass=lambda t: t["group"])
    path = tmp_path / "subclass.png"
    plots.plot_level(levels_table(summary), "subclass", path, None)
    width, height = Image.open(path).size
    assert width < 1200 and height < 1200


def test_level_without_rows_is_a_one_line_error(tmp_path):
    with pytest.raises(AbcError, match="no 'supertype' rows"):
        plots.plot_level(levels_table(summary_table([10, 100])), "supertype", tmp_path / "x.png")


def test_read_summary_parses_kept_whole_and_checks_columns(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_text("group,size,selected,kept_whole\n7,10,10,True\n8,900,90,False\n")
    assert plots.read_summary(path)["kept_whole"].tolist() == [True, False]
    path.write_text("group,size\n7,10\n")
    with pytest.raises(AbcError, match=r"lacks columns \['selected', 'kept_whole'\]"):
        plots.read_summary(path)
    with pytest.raises(AbcError, match="does not exist"):
        plots.read_summary(tmp_path / "absent.csv")


def test_term_colors_join_colour_and_taxonomy_tables(tmp_path):
    taxonomy = tmp_path / "pivoted.csv"
    taxonomy.write_text("cluster_alias,class,subclass\n1,01 A,001 a\n2,01 A,002 b\n3,02 NA,003 c\n")
    colors = tmp_path / "colors.csv"
    colors.write_text(
        "cluster_alias,class_color,subclass_color\n1,#111111,#aaaaaa\n2,#111111,#bbbbbb\n"
    )
    read = read_taxonomy([taxonomy, colors], two_level_profile())
    assert read.term_colors("class") == {"01 A": "#111111"}
    assert read.term_colors("subclass") == {
        "001 a": "#aaaaaa",
        "002 b": "#bbbbbb",
    }
    # a term without a colour (and the literal term "NA") falls back to the palette
    listed = plots.term_color_list(["01 A", "02 NA"], {"01 A": "#111111"})
    assert listed[0] == "#111111" and listed[1] in plots.FALLBACK_COLORS
    assert read_taxonomy([taxonomy], two_level_profile()).term_colors("class") == {}


def two_level_profile():
    """WMB-10X's profile with the two levels of the test's tables."""
    raw = load_dataset().raw
    taxonomy = {"format": "pivoted", "directory": "t", "terms": "pivoted",
                "levels": ["class", "subclass"], "annotations": []}  # fmt: skip
    return dataset_from_dict({**raw, "taxonomy": taxonomy})


def test_matrix_counts_figure_counts_the_sampled_cells(tmp_path):
    rng = np.random.default_rng(3)
    matrices = rng.choice(["WMB-10Xv2-TH", "WMB-10Xv3-MB", "WMB-10XMulti"], 1000)
    cells = pd.DataFrame(
        {
            "cell_label": [f"c{i}" for i in range(1000)],
            "cluster_alias": 1,
            "feature_matrix_label": matrices,
            "dataset_label": [m if m.count("-") == 1 else m.rsplit("-", 1)[0] for m in matrices],
            "library_method": "10Xv3",
        }
    )
    cells.to_csv(tmp_path / "cells.csv", index=False)
    counts = plots.read_matrix_counts(tmp_path / "cells.csv")
    assert dict(zip(counts["feature_matrix_label"], counts["cells"], strict=True)) == Counter(
        matrices
    )
    plots.plot_matrix_counts(counts, tmp_path / "matrices.png")
    assert Image.open(tmp_path / "matrices.png").size[1] > 200


def write_benchmark(path: Path, rows: list[str]) -> None:
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


def test_read_benchmarks_names_rules_and_jobs(tmp_path):
    bench = tmp_path / "benchmarks"
    write_benchmark(bench / "concat.tsv", ["12.5\t0:00:12\t812.3\t900\t800\t805\t1\t2\t90\t11.0"])
    write_benchmark(
        bench / "subset_matrix" / "WMB-10Xv2-TH.tsv",
        [
            "3.0\t0:00:03\t100.0\t1\t1\t1\t0\t0\t50\t2.0",
            "4.0\t0:00:04\t150.0\t1\t1\t1\t0\t0\t50\t3",
        ],
    )
    write_benchmark(bench / "download" / "expression_matrices" / "a" / "x.h5ad.tsv",
                    ["0.2\t0:00:00\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA"])  # fmt: skip
    (bench / "broken.tsv").write_text("")
    table = plots.read_benchmarks(bench).set_index("job")
    assert sorted(table["rule"]) == ["concat", "download", "subset_matrix"]
    assert table.loc["WMB-10Xv2-TH", "seconds"] == 4.0  # the last of repeated runs
    assert table.loc["concat", "max_rss_mb"] == 812.3
    assert np.isnan(table.loc["expression_matrices/a/x.h5ad", "max_rss_mb"])
    plots.plot_benchmarks(table.reset_index(), tmp_path / "runtime.png")
    plots.write_benchmark_table(table.reset_index(), tmp_path / "runtime.html")
    page = (tmp_path / "runtime.html").read_text()
    assert "subset_matrix" in page and "812.30" in page


def test_summary_table_shows_headline_numbers_and_every_group(tmp_path):
    summary = summary_table([5, 49, 50, 1000, 20000])
    path = tmp_path / "summary.html"
    plots.write_summary_table(summary, levels_table(summary), path, "cluster")
    page = path.read_text()
    assert f"<b>{summary['size'].sum():,}</b>cells before" in page
    assert f"<b>{summary['selected'].sum():,}</b>cells after" in page
    assert page.count("<tr class='whole'>") == 2  # 5 and 49 cells: under 50
    assert page.count("<tr") - 1 - 1 - 3 == len(summary)  # minus 2 headers, 3 classes


def test_failed_figure_becomes_a_placeholder_naming_the_reason(tmp_path):
    def broken():
        raise AbcError("the sampling levels table has no 'class' rows")

    png, page = tmp_path / "class.png", tmp_path / "table.html"
    assert plots.draw_safely(png, "Cells per class", broken) is False
    assert Image.open(png).size[0] > 100
    assert plots.draw_safely(page, "Summary", lambda: 1 / 0) is False
    assert "ZeroDivisionError" in page.read_text()
    assert plots.draw_safely(png, "x", lambda: None) is True


def test_tick_labels_keep_their_decimals():
    # "{x:,.0f}" labelled the ticks 2.5 and 7.5 as "2" and "8"
    labels = [plots.plain_number(x) for x in (0, 2.5, 7.5, 10, 0.25, 12500)]
    assert labels == ["0", "2.5", "7.5", "10", "0.25", "12,500"]


def test_class_bars_end_near_the_largest_bar_and_pale_colours_are_outlined():
    summary = summary_table([500, 40, 1300, 20, 800, 90])
    pale = {"01 class": "#fbfbe6"}  # as pale as the atlas's "18 TH Glut"
    fig = plots.level_figure(levels_table(summary), "class", pale)
    ax = fig.axes[0]
    largest = levels_table(summary).query("level == 'class'")["cells_before"].max()
    assert ax.get_xlim()[1] <= 1.5 * largest  # no log axis running on past 10^4
    bars = [p for p in ax.patches if p.get_height() > 0.5]  # the wide "before" bars
    assert bars and all(p.get_linewidth() > 0 and p.get_edgecolor()[3] == 1 for p in bars)
    assert all(max(p.get_edgecolor()[:3]) < 0.6 for p in bars)  # a dark outline
    plt.close(fig)


def test_figures_at_atlas_scale_fit_a_screen(tmp_path):
    """5,322 clusters, 338 subclasses, 34 classes, 24 matrix files."""
    rng = np.random.default_rng(4)
    sizes = rng.lognormal(5.5, 1.8, 5322).astype(int) + 1
    summary = summary_table(sizes, fraction=0.05).assign(
        subclass=[f"{i % 338:04d} sub" for i in range(5322)],
        **{"class": [f"{i % 34:02d} class" for i in range(5322)]},
    )
    levels = levels_table(summary)
    figures = {
        "sizes.png": lambda p: plots.plot_group_sizes(summary, 50, p, "cluster"),
        "class.png": lambda p: plots.plot_level(levels, "class", p),
        "subclass.png": lambda p: plots.plot_level(levels, "subclass", p),
    }
    for name, draw in figures.items():
        draw(tmp_path / name)
        width, height = Image.open(tmp_path / name).size
        assert width <= 1600 and height <= 1400, name
        assert len(np.unique(pixels(tmp_path / name), axis=0)) > 50, name


def landing_inputs(summary: pd.DataFrame):
    counts = pd.DataFrame(
        {"feature_matrix_label": ["WMB-10Xv2-TH", "WMB-10Xv3-MB"], "dataset_label": "x",
         "cells": [400, int(summary["selected"].sum()) - 400]}
    )  # fmt: skip
    bench = pd.DataFrame(
        {"rule": ["concat", "subset_matrix"], "job": ["concat", "m"], "seconds": [90.0, 30.0],
         "max_rss_mb": [812.0, 300.0], "cpu_seconds": [1.0, 1.0]}
    )  # fmt: skip
    source = {
        "release_matrices": 24,
        "bytes_text": "1.2 GB downloaded or read from the cache",
        "min_size": 50,
        "release_text": "Release 20250531",
    }
    return counts, bench, source


def test_landing_answers_the_first_questions_on_one_screen():
    summary = summary_table([5, 49, 50, 1000, 20000, 300])
    counts, bench, source = landing_inputs(summary)
    page = landing.landing_fragment(
        summary, levels_table(summary), counts, source, bench, "cluster"
    )
    before, after = summary["size"].sum(), summary["selected"].sum()
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page.split("</style>", 1)[1]))
    assert f"{after:,} of {before:,}" in text and "cells kept" in text
    assert "2 of 6" in text and "clusters kept whole" in text  # 5 and 49 cells: under 50
    assert "2 of 24" in text and "1.2 GB" in text  # files and bytes
    assert "2.0 job-min" in text and "peak 812 MB (concat)" in text  # the cost
    for term, b, a in (
        levels_table(summary)
        .query("level == 'class'")[["term", "cells_before", "cells_after"]]
        .itertuples(index=False)
    ):
        assert re.search(rf"{term}\s+{b:,}\s+{a:,}\s+{a / b:.1%}", text), term
    figure = re.search(r"src='data:image/png;base64,([^']+)'", page).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(figure))).size[0] > 500
    assert max(len(line) for line in page.splitlines()) < 10_000  # docutils' line limit


def test_the_cards_say_how_each_matrix_was_read(tmp_path):
    """From the subset jobs' last log lines: auto streams some files, reads others from
    the cache, downloads others; a job without a log is left out."""
    logs = tmp_path / "subset_matrix"
    logs.mkdir()
    line = "x INFO {}: 10 rows, 99 non-zeros, {} MB read ({})\n"
    (logs / "A.log").write_text(line.format("A", "1,250.5", "stream"))
    retried = line.format("B", "0.5", "download") + line.format("B", "0.5", "stream")
    (logs / "B.log").write_text(retried)  # the last line counts
    (logs / "C.log").write_text(line.format("C", "3.0", "cache"))
    found = landing.transfers(tmp_path, ["A", "B", "C", "D"])
    assert found == {"stream": [1_250_500_000, 500_000], "cache": [3_000_000]}
    text = landing.transfer_text(found, 5 * 10**9)
    expected = "1.25 GB streamed (rows, obs, var) from 2 files, 1 from the cache, of 5 GB of files"
    assert text == expected
    assert landing.transfer_text({}, 10**9) == "read, of 1 GB of files"


# ---- the report of a synthetic run, in a browser ---------------------------------------

FIGURES = [
    "group_sizes.png",
    "cells_per_class.png",
    "cells_per_subclass.png",
    "cells_per_matrix.png",
    "runtime.png",
]
TABLES = ["sampling_summary.html", "runtime.html"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
]
# Runs in the report page: records what the first screen shows, opens the first category and
# the cluster-size figure the way the menu does, then records the decoded size of every
# figure and what the page shows.
PROBE_JS = """
window.addEventListener("load", () => setTimeout(() => {
  const probe = {figures: {}, shown: [], text: "", errors: []};
  const images = {};
  const landing = document.querySelector("#abc-landing");  // the first screen
  probe.landing = landing ? landing.innerText : "";
  probe.landing_top = landing ? landing.closest(".prose").getBoundingClientRect().top : -1;
  probe.landing_images = landing ? Array.from(landing.querySelectorAll("img"),
                                              (img) => img.naturalWidth) : [];
  try {
    for (const r of Object.values(results)) {
      if (!r.mime_type.startsWith("image/")) continue;
      images[r.name] = new Image();
      images[r.name].src = r.data_uri;
    }
    const first = Object.keys(results).find(p => results[p].name === "group_sizes.png");
    app.setView({content: "img", contentPath: results[first].data_uri, resultPath: first});
  } catch (e) { probe.errors.push(String(e)); }
  setTimeout(() => app.showCategory(Object.keys(categories).sort()[0]), 500);
  setTimeout(() => {
    for (const [name, img] of Object.entries(images)) {
      probe.figures[name] = [img.naturalWidth, img.naturalHeight];
    }
    probe.shown = Array.from(document.querySelectorAll("#app img[src^='data:image/png']"),
                             (img) => [img.naturalWidth, img.naturalHeight]);
    probe.text = document.querySelector("#app").innerText;
    const pre = document.createElement("pre");
    pre.id = "abc-probe";
    pre.hidden = true;
    pre.textContent = JSON.stringify(probe);
    document.body.appendChild(pre);
  }, 1000);
}, 300));
"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def report_run(tmp_path_factory, s3_endpoint):
    """The workflow on the synthetic release (moto S3), then `snakemake --report`.

    The run's stderr is kept in ``run.stderr`` of the working directory."""
    workdir = tmp_path_factory.mktemp("report_run")
    config = {
        "abc": {"bucket": "allen-brain-cell-atlas", "endpoint_url": s3_endpoint},
        "sampling": {"target_cells": 1500, "min_cluster_size": 50},
    }
    result = run_snakemake(workdir, config=config, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    (workdir / "run.stderr").write_text(result.stderr)
    (workdir / "run.stdout").write_text(result.stdout)
    assert (workdir / "data" / "report" / "group_sizes.png").exists(), (
        "the default target made no report figures: the Snakefile must include "
        "workflow/rules/report.smk and give `rule all` the input REPORT_TARGETS"
    )
    result = run_snakemake(workdir, "--report", "report.html", config=config)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return workdir


def embedded_results(report: Path) -> dict:
    """The report's `var results = {...};`: one entry per file marked with report()."""
    match = re.search(r"var results = (\{.*?\});\n", report.read_text(), flags=re.S)
    assert match, "no results in the report"
    return {entry["name"]: entry for entry in json.loads(match.group(1)).values()}


@pytest.mark.e2e
def test_report_embeds_every_figure_and_table(report_run):
    results = embedded_results(report_run / "report.html")
    assert sorted(results) == sorted(FIGURES + TABLES)
    for name in FIGURES:
        uri = results[name]["data_uri"]
        assert uri.startswith("data:image/png"), name
        embedded = base64.b64decode(uri.split(",", 1)[1])
        assert embedded == (report_run / "data" / "report" / name).read_bytes(), name
        assert results[name]["caption"].strip(), f"{name} has no caption"


@pytest.mark.e2e
def test_class_figure_uses_the_atlas_colours(report_run, synthetic_release):
    root = Path(synthetic_release["root"])
    views = "metadata/WMB-taxonomy/20231215/views/cluster_to_cluster_annotation_membership"
    pivoted = pd.read_csv(root / f"{views}_pivoted.csv", keep_default_na=False)
    colors = pd.read_csv(root / f"{views}_color.csv", keep_default_na=False)
    class_colors = pivoted.merge(colors, on="cluster_alias").drop_duplicates("class")
    figure = report_run / "data" / "report" / "cells_per_class.png"
    for hex_color in class_colors["class_color"]:
        rgb = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
        assert count_color(figure, rgb, tolerance=2) > 100, f"{hex_color} is not drawn"


@pytest.mark.e2e
def test_report_figures_are_real_plots_of_the_run(report_run):
    report_dir = report_run / "data" / "report"
    for name in FIGURES:  # a placeholder is a small, nearly white image
        assert len(np.unique(pixels(report_dir / name), axis=0)) > 50, f"{name} is a placeholder"
    runtime = (report_dir / "runtime.html").read_text()
    for rule in ("sample_cells", "subset_matrix", "concat"):
        assert rule in runtime
    summary = pd.read_csv(report_run / "data" / "sampling_summary.csv")
    page = (report_dir / "sampling_summary.html").read_text()
    assert f"<b>{summary['selected'].sum():,}</b>cells after" in page


@pytest.mark.e2e
def test_run_output_is_short_without_library_chatter(report_run):
    lines = (report_run / "run.stderr").read_text().splitlines()
    assert not [line for line in lines if "as categorical" in line]
    assert len(lines) < 400  # Snakemake's own lines for ~22 jobs, and a few of ours
    ours = [line for line in lines if line.startswith("abc-downsample:")]
    kinds = [line.split(":")[1].strip() for line in ours]
    assert kinds == ["sample", "done", "result"], ours
    assert "error" not in (report_run / "run.stdout").read_text()


@pytest.mark.e2e
def test_run_says_once_how_many_matrices_the_sample_needs(report_run):
    lines = (report_run / "run.stderr").read_text().splitlines()
    cells = pd.read_csv(report_run / "data" / "downsampled_cells.csv")
    needed = cells["feature_matrix_label"].nunique()
    said = [i for i, line in enumerate(lines) if line.startswith("abc-downsample: sample:")]
    assert len(said) == 1 and f"it needs {needed} matrix files" in lines[said[0]]
    first_subset = min(i for i, line in enumerate(lines) if "rule subset_matrix:" in line)
    assert said[0] < first_subset


@pytest.mark.e2e
def test_run_ends_with_a_true_summary_of_what_it_made(report_run):
    lines = (report_run / "run.stderr").read_text().splitlines()
    summary = pd.read_csv(report_run / "data" / "sampling_summary.csv")
    cells = pd.read_csv(report_run / "data" / "downsampled_cells.csv")
    result = report_run / "data" / "downsampled_expression.h5ad"
    with h5py.File(result) as f:  # an independent reading of the result
        n_obs = len(f["obs"][f["obs"].attrs["_index"]])
    before, kept_whole = summary["size"].sum(), summary["kept_whole"].sum()
    assert n_obs == len(cells) == summary["selected"].sum()
    assert lines[-2] == (
        f"abc-downsample: done: {n_obs:,} of {before:,} cells ({n_obs / before:.1%}), "
        f"{kept_whole} of {len(summary)} clusters kept whole, "
        f"from {cells['feature_matrix_label'].nunique()} matrix files"
    )
    assert lines[-1].startswith(
        f"abc-downsample: result: data/downsampled_expression.h5ad "
        f"({result.stat().st_size / 1e6:,.1f} MB)"
    )


@pytest.mark.e2e
@pytest.mark.browser
def test_report_shows_its_figures_in_chromium(report_run, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = report_run / "report.html"
    probed = tmp_path / "probed.html"
    html = page.read_text()
    at = html.rindex("</body>")
    probed.write_text(html[:at] + f"<script>{PROBE_JS}</script>" + html[at:])

    def run_chromium(*args):
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
        command = [browser, *flags, *args, probed.as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=180)

    dom = run_chromium("--dump-dom").stdout
    match = re.search(r'<pre id="abc-probe" hidden="">(.*?)</pre>', dom, flags=re.S)
    assert match, "the report's scripts did not run in chromium"
    probe = json.loads(html_lib.unescape(match.group(1)))
    assert probe["errors"] == []
    for name in FIGURES:
        assert probe["figures"][name] == list(Image.open(report_run / "data/report" / name).size)
    assert probe["shown"] == [list(Image.open(report_run / "data/report/group_sizes.png").size)]
    assert "1. What the sample kept" in probe["text"] and "cells per class" in probe["text"]

    # the first screen: the headline numbers, the figure, every class, at the top
    summary = pd.read_csv(report_run / "data" / "sampling_summary.csv")
    before, after = summary["size"].sum(), summary["selected"].sum()
    whole = summary["kept_whole"].sum()
    text = " ".join(probe["landing"].split())
    assert f"{after:,} of {before:,} cells kept" in text
    assert f"{whole} of {len(summary)} clusters kept whole" in text
    matrices = pd.read_csv(report_run / "data" / "downsampled_cells.csv")["feature_matrix_label"]
    assert f"{matrices.nunique()} of " in text and "matrix files read" in text
    assert "job-min" in text and "run cost" in text
    levels = pd.read_csv(report_run / "data" / "sampling_levels.csv", keep_default_na=False)
    for term in levels.loc[levels["level"] == "class", "term"]:
        assert term in text
    assert probe["landing_images"] and probe["landing_images"][0] > 500
    assert 0 <= probe["landing_top"] < 60  # at the top, not centred under empty space

    shot = tmp_path / "report.png"
    run_chromium(f"--screenshot={shot}", "--window-size=1600,900")
    assert Image.open(shot).size == (1600, 900)
    assert count_color(shot, TAB_RED, tolerance=10) > 100  # the figure is on screen
    # the landing page as it opens, untouched by the probe: its figure is on screen
    landing_shot = tmp_path / "landing.png"
    command = [
        browser,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={landing_shot}",
        "--window-size=1600,900",
        page.as_uri(),
    ]
    subprocess.run(command, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert count_color(landing_shot, TAB_RED, tolerance=10) > 100
    shutil.copy(landing_shot, report_run / "landing.png")  # for a look: docs/report.png
