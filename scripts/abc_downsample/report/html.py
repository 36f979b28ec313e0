"""Small HTML pieces for the report's pages: headline cards and plain tables."""

import html
import math

import numpy as np
import pandas as pd

from abc_downsample.atomic import atomic_path

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin-top:1.5em}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.4em}
table{border-collapse:collapse;font-size:.85em}
th{position:sticky;top:0;background:#eee}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.whole{background:#fff4d6}
"""

escape = html.escape


def write_page(out, title: str, body: str) -> None:
    """A standalone page (the report shows it in a frame), written atomically."""
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    with atomic_path(out, suffix=".html") as tmp:
        tmp.write_text(page, encoding="utf-8")


def cards(items: dict[str, str]) -> str:
    """Headline numbers: {caption: value}, each in a box, the value large."""
    boxes = "".join(
        f"<div class='card'><b>{escape(v)}</b>{escape(k)}</div>" for k, v in items.items()
    )
    return f"<div class='cards'>{boxes}</div>"


def table(frame: pd.DataFrame, highlight=None) -> str:
    """A table of ``frame``; rows where ``highlight`` is true get the class 'whole'."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    marks = highlight if highlight is not None else np.zeros(len(frame), bool)
    rows = []
    for mark, values in zip(marks, frame.itertuples(index=False), strict=True):
        cells = "".join(_cell(v) for v in values)
        rows.append(f"<tr class='whole'>{cells}</tr>" if mark else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value) -> str:
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    return f"<td{' class=n' if numeric else ''}>{escape(fmt(value))}</td>"


def fmt(value) -> str:
    """Numbers with thousands separators, booleans as 'yes' or nothing."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else f"{value:,.2f}"
    return str(value)


