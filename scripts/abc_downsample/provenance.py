"""What made a result, as the run recorded it.

Sampling writes the settings it ran with into its marker
(``data/.abc/done/sample/sample.<key>.json``); concat builds the result's
``uns["abc_downsample"]`` from that marker; the report reads the result's provenance. So
the result and the report say what the run did, never what the config of a later command
says (a report made without the run's ``--config`` override, say).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py

from abc_downsample.errors import AbcError, unreadable

UNS_KEY = "abc_downsample"
# Settings only a draw uses: a given cell list (sampling.cells_file) plays without them.
DRAW_SETTINGS = ("target_cells", "min_cluster_size", "seed", "strategy")
# In the marker for rerun decisions; the provenance names them its own way.
MARKER_ONLY = ("release", "dataset")


def read_marker(path) -> dict:
    """The settings a sample was made with (its marker)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise AbcError(
            f"cannot read the sample's settings {path} ({err}): delete it and rerun"
        ) from None


def sampling_record(settings: dict) -> dict:
    """The sampling part of the provenance: the settings that played a part. A given cell
    list is named with its MD5, and a draw's settings are left out."""
    record = {k: v for k, v in settings.items() if k not in MARKER_ONLY and v is not None}
    if record.get("cells_file"):
        for key in DRAW_SETTINGS:
            record.pop(key, None)
    return record


def read_provenance(h5ad_path) -> dict:
    """``uns["abc_downsample"]`` of a result, without reading X or obs."""
    with unreadable(f"result {h5ad_path}"), h5py.File(h5ad_path, "r") as h5file:
        return provenance_in(h5file, required=True)


def provenance_in(h5file: h5py.File, required: bool = False) -> dict:
    """``uns["abc_downsample"]`` of an open result: empty for a file without one, unless
    ``required`` (then a KeyError)."""
    from anndata.io import read_elem

    group = h5file["uns"][UNS_KEY] if required else h5file.get(f"uns/{UNS_KEY}")
    return dict(read_elem(group)) if group is not None else {}
