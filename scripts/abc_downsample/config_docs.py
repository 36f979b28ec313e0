"""config/README.md, made from config/config.yaml: its comments are the documentation of
every key, written once. ``python -m abc_downsample.config_docs`` writes the page; a test
checks that the committed page is what this makes and that every schema key is on it.
"""

import re
import sys

from abc_downsample.project import CONFIG_DIR, DEFAULT_CONFIG

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*)(?:#\s?(?P<note>.*))?$")
INTRO = """# Configuration

Every key of [`config.yaml`](config.yaml), with its default and what it does (this page is
made from that file's comments: `python -m abc_downsample.config_docs` with `scripts/` on
the Python path). A run checks the whole configuration against
[`workflow/schemas/config.schema.yaml`](../workflow/schemas/config.schema.yaml) while it is
read and stops with one line naming a wrong key.

Override keys with a config file of your own (`--configfile my.yaml`, only the keys that
differ) or on the command line, e.g.
`snakemake --cores 8 --config sampling='{target_cells: 100000}'`. The dataset profiles
(`abc.dataset`) are described in [`datasets/README.md`](datasets/README.md).
"""


def documented_keys(text: str) -> list[tuple[str, str, str]]:
    """(dotted key, default as written, its comment) for every key of the file, in order."""
    rows, path, comments = [], [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if not match:
            comments = []
            continue
        depth = len(match["indent"]) // 2
        path = path[:depth] + [match["key"]]
        note = " ".join(comments + ([match["note"].strip()] if match["note"] else []))
        rows.append((".".join(path), match["value"].strip(), note))
        comments = []
    return rows


def render(text: str) -> str:
    """The page: one table per top-level block, a row per key."""
    blocks: dict[str, list[str]] = {}
    for key, value, note in documented_keys(text):
        top = key.split(".")[0]
        if "." not in key:
            blocks.setdefault(top, [])
            continue
        shown = f"`{value}`" if value else "(a block)"
        blocks[top].append(f"| `{key}` | {shown} | {note.replace('|', '/')} |")
    parts = [INTRO]
    for top, rows in blocks.items():
        parts.append(f"\n## `{top}`\n\n| key | default | what it does |\n|---|---|---|\n")
        parts.append("\n".join(rows) + "\n")
    return "".join(parts)


def main() -> None:
    page = render(DEFAULT_CONFIG.read_text())
    (CONFIG_DIR / "README.md").write_text(page)
    sys.stdout.write(f"wrote {CONFIG_DIR / 'README.md'}\n")


if __name__ == "__main__":
    main()
