"""The README's quoted run output and docs/report.png, made from real runs, or checked.

    python docs/make_docs.py           # rewrite them (the screenshot needs Chromium)
    python docs/make_docs.py --check   # exit 1 naming what is stale (tests/e2e/test_docs.py)

1. The offline demo as the README's demo block runs it (config/demo.yaml, in a copy of the
   project): its last lines are quoted under that block, and its report's first screen,
   shot in headless Chromium, is docs/report.png. The PNG carries the first screen's text
   in its metadata, so the check needs no browser.
2. The workflow with ``abc.transfer: auto`` on a larger synthetic release (``AUTO_RELEASE``,
   sampled as ``AUTO_SAMPLING``) served by a local S3 server (moto, a test requirement):
   one subset job's plan line, quoted in the README's "Stream mode and auto".

A quoted block is the fenced block after a line ``<!-- docs: NAME ... -->`` in the README.
Every figure in them is what the runs print (file sizes, bytes and model estimates follow
from the seeded release); only the run cost of the first screen varies from run to run.
"""

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
README = PROJECT / "README.md"
SCREENSHOT = PROJECT / "docs" / "report.png"
DEMO = "config/demo.yaml"
AUTO_RELEASE = {"release": "20250531", "n_cells": 20_000, "n_genes": 2_000, "seed": 0}
AUTO_SAMPLING = {"target_cells": 2_000, "min_cluster_size": 10}  # a tenth of the cells
AUTO_MATRIX = "WMB-10Xv2-HPF"  # the release's largest file
WINDOW = "1600,900"
PNG_TEXT_KEY = "abc-downsample first screen"
# what legitimately differs between two runs: the first screen's run cost
VARIES = [r"[\d,.]+ job-(min|hours)", r"peak [\d,]+ MB \(\w+\)"]
BLOCK_MARK = re.compile(r"^\s*<!-- docs: ([\w-]+)")

sys.path.insert(0, str(PROJECT / "scripts"))
sys.path.insert(0, str(PROJECT / "tests"))


def snakemake(cwd: Path, *args: str) -> str:
    """The snakemake of this Python, as the README runs it; its stderr (the run's lines)."""
    command = [sys.executable, "-m", "snakemake", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        sys.exit(f"make_docs: {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stderr


def project_copy(dest: Path) -> Path:
    """The project's files as a fresh clone has them (no outputs, no caches)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=PROJECT, capture_output=True, check=True).stdout  # fmt: skip
    for name in files.decode().split("\0"):
        source = PROJECT / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def demo_run(work: Path) -> dict:
    """The README's demo block (dry-run, run, report) in a copy of the project."""
    project = project_copy(work / "project")
    snakemake(project, "--cores", "2", "-n", "--configfile", DEMO)
    lines = snakemake(project, "--cores", "2", "--configfile", DEMO).strip().splitlines()
    snakemake(project, "--report", "report.html", "--configfile", DEMO)
    out = yaml.safe_load((project / DEMO).read_text())["output"]["dir"]
    landing = (project / out / "report" / "landing.html").read_text()
    return {"end": lines[-2:], "report": project / "report.html", "landing": text_of(landing)}


def auto_line(work: Path) -> str:
    """The plan line of a subset job under abc.transfer auto, against a local S3 server."""
    from s3_server import MotoServer, upload_tree

    from abc_downsample.demo.release import write_release

    bucket = work / "bucket"
    write_release(bucket, **AUTO_RELEASE)
    server = MotoServer()
    try:
        upload_tree(server.url, bucket)
        config = {
            "abc": {"release": AUTO_RELEASE["release"], "endpoint_url": server.url,
                    "cache_dir": "abc_data", "transfer": "auto"},
            "sampling": AUTO_SAMPLING,
        }  # fmt: skip
        (work / "auto.yaml").write_text(yaml.safe_dump(config))
        target = f"data/subsets/{AUTO_MATRIX}.h5ad"
        snakemake(work, "-s", str(PROJECT / "Snakefile"), "--cores", "2", target,
                  "--configfile", str(PROJECT / "config" / "config.yaml"), "auto.yaml")
    finally:
        server.stop()
    log = (work / "data" / "logs" / "subset_matrix" / f"{AUTO_MATRIX}.log").read_text()
    return re.search(r" INFO (auto .*)$", log, re.M).group(1)


def text_of(fragment: str) -> str:
    """An HTML fragment's text, on one line (no style, no tags, no figure)."""
    fragment = re.sub(r"<style>.*?</style>|src='[^']*'", "", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def screenshot(report: Path, landing: str, out: Path) -> None:
    """The report's first screen as Chromium shows it, with its text in the PNG."""
    from PIL import Image, PngImagePlugin

    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if browser is None:
        sys.exit("make_docs: the screenshot needs Chromium (apt-get install chromium)")
    shot = report.with_name("shot.png")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--virtual-time-budget=15000", f"--user-data-dir={report.parent / 'chrome'}",
                    f"--screenshot={shot}", f"--window-size={WINDOW}", report.as_uri()],
                   capture_output=True, timeout=300, check=True)  # fmt: skip
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_TEXT_KEY, landing)
    Image.open(shot).save(out, pnginfo=info, optimize=True)


def screenshot_text(path: Path) -> str:
    from PIL import Image

    return Image.open(path).text.get(PNG_TEXT_KEY, "")


def comparable(text: str) -> str:
    for pattern in VARIES:
        text = re.sub(pattern, "<varies>", text)
    return text


def with_blocks(readme: str, blocks: dict[str, list[str]]) -> str:
    """``readme`` with the fenced block after each ``<!-- docs: NAME -->`` set to
    ``blocks[NAME]`` (indented as the fence is); every NAME must be there."""
    lines, out, found, i = readme.splitlines(), [], set(), 0
    while i < len(lines):
        out.append(lines[i])
        mark = BLOCK_MARK.match(lines[i])
        i += 1
        if not mark or mark.group(1) not in blocks:
            continue
        while not lines[i].lstrip().startswith("```"):  # to the opening fence
            out.append(lines[i])
            i += 1
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        out.append(lines[i])
        i += 1
        while not lines[i].lstrip().startswith("```"):  # the old content, replaced
            i += 1
        out += [indent + line for line in blocks[mark.group(1)]]
        found.add(mark.group(1))
    if missing := set(blocks) - found:
        sys.exit(f"make_docs: README.md has no block marked <!-- docs: {', '.join(missing)} -->")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="make_docs-") as tmp:
        work = Path(tmp)
        demo = demo_run(work)
        (work / "auto").mkdir()
        blocks = {"demo-output": demo["end"], "auto-line": [auto_line(work / "auto")]}
        readme = with_blocks(README.read_text(), blocks)
        if not args.check:
            README.write_text(readme)
            screenshot(demo["report"], demo["landing"], SCREENSHOT)
            return
    stale = []
    if readme != README.read_text():
        stale.append("README.md's quoted run output")
    if comparable(screenshot_text(SCREENSHOT)) != comparable(demo["landing"]):
        stale.append(f"{SCREENSHOT.relative_to(PROJECT)}")
    if stale:
        sys.exit(f"make_docs: {' and '.join(stale)} differ from what the runs show now: "
                 "run `python docs/make_docs.py` and commit the result")  # fmt: skip


if __name__ == "__main__":
    main()
