"""The tables that explain a sample: per group, and per taxonomy level and term."""

import logging

import numpy as np
import pandas as pd

from abc_downsample.sampling.coding import CellTable, Coded, coded

log = logging.getLogger("abc_downsample.sampling.sample")


def group_summary(group: str, groups: Coded, present, sizes, counts, table: CellTable):
    """One row per sampling group: size, selected, kept whole (and its taxonomy terms)."""
    summary = pd.DataFrame(
        {
            "group": groups.categories[present],
            "size": sizes[present],
            "selected": counts[present],
            "kept_whole": counts[present] == sizes[present],
        }
    )
    if group == table.group_key:  # the taxonomy's groups: name their terms (by position:
        terms = table.cluster_terms[present]  # the unassigned group made the keys text)
        for level in table.taxonomy.levels:
            if level != group:
                summary[level] = terms[level].to_numpy()
    return summary


def coverage_floor(sampling: dict) -> int:
    """The floor coverage is measured against: ``min_cells_per_group``, or where none is
    set ``min_cluster_size`` (the size under which a group is kept whole)."""
    return int(sampling.get("min_cells_per_group") or 0) or int(sampling["min_cluster_size"])


def level_views(table: CellTable, group_codes, n_groups, sizes, counts, population, selected,
                floor: int):  # fmt: skip
    """Per taxonomy level and term: cells before/after sampling; the sampling groups present
    in the term (``(term, group)`` pairs), how many were kept whole, how many kept fewer
    than ``min(size, floor)`` cells, and the fewest cells any of them had and kept."""
    cluster = table.clusters.codes[population]
    pair_index, pair = pd.factorize(cluster * n_groups + group_codes[population])  # hashing
    pairs = pd.DataFrame(
        {
            "group": pair % n_groups,
            "before": np.bincount(pair_index, minlength=len(pair)),
            "after": np.bincount(pair_index, selected[population], len(pair)).astype(np.int64),
        }
    )
    groups = pd.DataFrame(
        {
            "size": sizes,
            "kept": counts,
            "whole": counts == sizes,
            "below": counts < np.minimum(sizes, floor),
        }
    )
    pair_cluster = pair // n_groups
    views = []
    for level in table.taxonomy.levels:
        terms = coded(table.cluster_terms[level])
        with_terms = pairs.assign(term=terms.codes[pair_cluster])
        # groups without a term at this level (the unassigned cells): in no term's count
        views.append(_level_view(level, terms, with_terms[with_terms["term"] >= 0], groups))
    return pd.concat(views, ignore_index=True)


def _level_view(level: str, terms: Coded, pairs: pd.DataFrame, groups: pd.DataFrame):
    cells = pairs.groupby("term")[["before", "after"]].sum()
    members = pairs.drop_duplicates(["term", "group"])
    members = members[["term"]].join(groups, on=members["group"]).groupby("term")
    stats = members.agg(
        groups_before=("size", "size"),
        groups_kept_whole=("whole", "sum"),
        groups_below_floor=("below", "sum"),
        smallest_group_before=("size", "min"),
        smallest_group_after=("kept", "min"),
    ).reindex(cells.index)
    return pd.DataFrame(
        {
            "level": level,
            "term": terms.categories[cells.index],
            "cells_before": cells["before"].to_numpy(),
            "cells_after": cells["after"].to_numpy(),
            **{column: stats[column].to_numpy().astype(np.int64) for column in stats.columns},
        }
    )


def log_figures(summary: pd.DataFrame, sampling: dict) -> None:
    """The sample in one log line."""
    rare = summary["size"] < int(sampling.get("min_cluster_size", 0))
    log.info(
        "population %d cells in %d groups; %d groups (%d cells) under min_cluster_size=%s "
        "kept whole; %d cells drawn from the others (%s); %d cells selected",
        summary["size"].sum(),
        len(summary),
        rare.sum(),
        summary.loc[rare, "selected"].sum(),
        sampling.get("min_cluster_size"),
        summary.loc[~rare, "selected"].sum(),
        "cells_file" if sampling.get("cells_file") else _how(sampling),
        summary["selected"].sum(),
    )



def _how(sampling: dict) -> str:
    """The strategy, with its floor and selection where set."""
    floor = sampling.get("min_cells_per_group")
    within = sampling.get("within")
    return (f"{sampling.get('strategy')}{f', floor {floor}' if floor else ''}"
            f"{f', within {within}' if within else ''}")  # fmt: skip
