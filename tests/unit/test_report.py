"""The report: figures and tables from hand-made tables (`snakemake --report` of a
synthetic run, opened in headless Chromium: e2e/test_report_run.py).

Figures are checked by their pixels (PIL), tables by an independent reading of the inputs.
"""

import base64
import html as html_lib
import io
import re
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from pictures import ATLAS_GREEN, TAB_RED, count_color, pixels
from PIL import Image

from abc_downsample.dataset.profile import dataset_from_dict, load_dataset
from abc_downsample.errors import AbcError
from abc_downsample.metadata.taxonomy import read_taxonomy
from abc_downsample.project import SHIPPED_RELEASES
from abc_downsample.release.manifest import Manifest, manifest_key
from abc_downsample.report import landing, plots


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
        "dataset_matrices": 24,
        "directories": ["WMB-10Xv2", "WMB-10Xv3"],
        "bytes_text": "1.2 GB downloaded or read from the cache",
        "min_size": 50,
        "run_text": "Release 20250531",
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
    assert "matrix files of WMB-10Xv2, WMB-10Xv3 read" in text
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


def test_landing_lists_the_terms_under_the_floor_per_level():
    levels = pd.DataFrame(
        {
            "level": ["class", "class", "cluster", "cluster", "cluster"],
            "term": ["01 IT", "02 NP", "A", "B", "C"],
            "cells_before": [500, 90, 400, 100, 90],
            "cells_after": [40, 12, 30, 10, 12],
            "groups_before": [2, 1, 1, 1, 1],
            "groups_kept_whole": [0, 0, 0, 0, 0],
            "groups_below_floor": [1, 0, 0, 1, 0],
            "smallest_group_after": [10, 12, 30, 10, 12],
        }
    )
    page = landing.coverage_table(levels, *landing.floor_text(50, 20, "cluster"))
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "Terms with a cluster under the floor" in text and "min(size, 20)" in text
    # no floor set: the title says what was measured, the note how to set one
    title, note = landing.floor_text(50, 0, "cluster")
    assert "kept fewer than min(size, 50) cells" in title and "under the floor" not in title
    assert "sampling.min_cells_per_group: 50" in note
    assert re.search(r"class\s+1 of 2\s+01 IT \(10\)", text)
    assert re.search(r"cluster\s+1 of 3\s+B \(10\)", text)
    floored = levels.assign(groups_below_floor=0)
    assert re.sub(r"<[^>]+>", " ", landing.coverage_table(floored, "t", "")).count("none") == 2
    assert landing.coverage_table(levels.drop(columns="groups_below_floor"), "t", "") == ""


def test_the_cards_say_how_each_matrix_was_read(tmp_path):
    """From the subset jobs' last log lines: auto streams some files, reads others from
    the cache, downloads others; a job without a log is left out. What a stream job read
    besides the rows (headers, obs, var: on a small file more than the file) is counted
    apart, so no figure reads as more than the files (issue 22, finding 4)."""
    logs = tmp_path / "subset_matrix"
    logs.mkdir()
    line = "x INFO {}: 10 rows, 99 non-zeros, {} MB read ({})\n"
    (logs / "A.log").write_text(line.format("A", "1,250.5", "stream: 1,000.5 MB of rows"))
    retried = line.format("B", "0.5", "download")
    retried += line.format("B", "0.9", "stream: 0.2 MB of rows")
    (logs / "B.log").write_text(retried)  # the last line counts
    (logs / "C.log").write_text(line.format("C", "3.0", "cache"))
    found = landing.transfers(tmp_path, ["A", "B", "C", "D"])
    assert found == {"stream": [(1_250_500_000, 1_000_500_000), (900_000, 200_000)],
                     "cache": [(3_000_000, 3_000_000)]}  # fmt: skip
    text = landing.transfer_text(found, 5 * 10**9)
    assert text == (
        "1 GB of rows streamed from 2 files, plus 251 MB of headers, obs and var; "
        "1 from the cache; 5 GB of files in all"
    )
    assert landing.transfer_text({}, 10**9) == "read; 1 GB of files in all"
    small = landing.transfer_text({"stream": [(2_700_000, 800_000)]}, 1_860_000)
    assert small == ("800 kB of rows streamed from 1 file, plus 1.9 MB of headers, obs and var "
                     "(read in blocks: more than such small files hold); 1.86 MB of files in all")


def test_files_read_count_the_datasets_own_matrices():
    """WHB reads 2 files: of WHB's 2, not of every matrix in the release (issue 22,
    finding 4), from the real manifest of 20250531."""
    manifest = Manifest.load(SHIPPED_RELEASES / manifest_key("20250531"))
    directories, files = landing.dataset_matrices(
        manifest, ["WHB-10Xv3-Neurons", "WHB-10Xv3-Nonneurons"], "raw"
    )
    assert directories == ["WHB-10Xv3"] and sorted(files) == [
        "WHB-10Xv3-Neurons", "WHB-10Xv3-Nonneurons"]  # fmt: skip
    directories, files = landing.dataset_matrices(manifest, ["WMB-10Xv3-MB"], "raw")
    assert directories == ["WMB-10Xv3"] and len(files) == 13


SAMPLED = {"release": "20250531", "variant": "raw", "dataset": "WMB-10X",
           "cluster_column": "cluster_alias", "filters": {}, "target_cells": 2000,
           "min_cluster_size": 50, "seed": 7, "strategy": "capped"}  # fmt: skip


def test_the_first_screen_says_what_the_run_did_from_its_provenance():
    """The sentence comes from the result's provenance: a sampled run names its target,
    strategy and seed; a run from a given cell list names the list and none of them."""
    text = landing.run_text(SAMPLED, "clusters")
    assert "dataset WMB-10X, release 20250531, raw counts" in text
    assert "target_cells = 2,000 with the capped strategy over cluster_alias (seed 7)" in text
    assert "clusters under 50 cells are kept whole" in text
    given = {k: v for k, v in SAMPLED.items()
             if k not in ("target_cells", "min_cluster_size", "seed", "strategy")}  # fmt: skip
    given.update(cells_file="picked.csv", cells_file_md5="abc", synthetic=True,
                 filters={"library_method": ["10Xv3"]})  # fmt: skip
    text = landing.run_text(given, "clusters")
    assert text.startswith("Offline demo: a synthetic release")
    assert "cells from picked.csv (not sampled, only cells with library_method in 10Xv3)" in text
    assert not re.search("target|seed|strategy|kept whole", text), text
