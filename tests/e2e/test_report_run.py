"""`snakemake --report` of a synthetic run: every figure and table embedded, figures that
are real plots of the run in the atlas's colours, the run's own terminal lines, and the
report opened in headless Chromium."""

import base64
import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import moto_config, run_snakemake
from pictures import TAB_RED, count_color, pixels
from PIL import Image
from synthetic_paths import COLORS, PIVOTED

FIGURES = [
    "group_sizes.png",
    "cells_per_level1_class.png",
    "cells_per_level2_subclass.png",
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
    config = moto_config(s3_endpoint)
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


def test_report_embeds_every_figure_and_table(report_run):
    results = embedded_results(report_run / "report.html")
    assert sorted(results) == sorted(FIGURES + TABLES)
    for name in FIGURES:
        uri = results[name]["data_uri"]
        assert uri.startswith("data:image/png"), name
        embedded = base64.b64decode(uri.split(",", 1)[1])
        assert embedded == (report_run / "data" / "report" / name).read_bytes(), name
        assert results[name]["caption"].strip(), f"{name} has no caption"


def test_class_figure_uses_the_atlas_colours(report_run, synthetic_release):
    root = Path(synthetic_release["root"])
    pivoted = pd.read_csv(root / PIVOTED, keep_default_na=False)
    colors = pd.read_csv(root / COLORS, keep_default_na=False)
    class_colors = pivoted.merge(colors, on="cluster_alias").drop_duplicates("class")
    figure = report_run / "data" / "report" / "cells_per_level1_class.png"
    for hex_color in class_colors["class_color"]:
        rgb = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
        assert count_color(figure, rgb, tolerance=2) > 100, f"{hex_color} is not drawn"


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


def test_run_output_is_short_without_library_chatter(report_run):
    lines = (report_run / "run.stderr").read_text().splitlines()
    assert not [line for line in lines if "as categorical" in line]
    assert len(lines) < 400  # Snakemake's own lines for ~22 jobs, and a few of ours
    ours = [line for line in lines if line.startswith("abc-downsample:")]
    kinds = [line.split(":")[1].strip() for line in ours]
    assert kinds == ["sample", "done", "result"], ours
    assert "error" not in (report_run / "run.stdout").read_text()


def test_run_says_once_how_many_matrices_the_sample_needs(report_run):
    lines = (report_run / "run.stderr").read_text().splitlines()
    cells = pd.read_csv(report_run / "data" / "downsampled_cells.csv")
    needed = cells["feature_matrix_label"].nunique()
    said = [i for i, line in enumerate(lines) if line.startswith("abc-downsample: sample:")]
    assert len(said) == 1 and f"it needs {needed} matrix files" in lines[said[0]]
    first_subset = min(i for i, line in enumerate(lines) if "rule subset_matrix:" in line)
    assert said[0] < first_subset


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
    assert f"{matrices.nunique()} of " in text
    assert "matrix files of WMB-10XMulti, WMB-10Xv2, WMB-10Xv3 read" in text
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
