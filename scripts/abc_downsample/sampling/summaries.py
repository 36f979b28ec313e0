"""The tables that explain a sample: per group, and per taxonomy level and term."""

import logging

import numpy as np
import pandas as pd

from abc_downsample.sampling.coding import CellTable, Coded, coded

log = logging.getLogger("abc_downsample.sampling.sample")


def group_summary(group: str, groups: Coded, present, sizes, counts, table: CellTable):
    """One row per sampling group: size, selected, kept whole (and its taxonomy terms)."""
    names = groups.categories[present]
    summary = pd.DataFrame(
        {
            "group": names.astype(str) if names.inferred_type == "mixed-integer" else names,
            "size": sizes[present],
            "selected": counts[present],
            "kept_whole": counts[present] == sizes[present],
        }
    )
    if group == table.group_key:  # the taxonomy's groups: name their terms
        terms = table.taxonomy.terms.reindex(summary["group"])
        for level in table.taxonomy.levels:
            if level != group:
                summary[level] = terms[level].to_numpy()
    return summary


def level_views(table: CellTable, group_codes, n_groups, whole, population, selected):
    """Per taxonomy level and term: cells before/after sampling, and the sampling groups
    present in the term (``(term, group)`` pairs) and how many of them were kept whole."""
    cluster = table.clusters.codes[population]
    pair_index, pair = pd.factorize(cluster * n_groups + group_codes[population])  # hashing
    pairs = pd.DataFrame(
        {
            "group": pair % n_groups,
            "before": np.bincount(pair_index, minlength=len(pair)),
            "after": np.bincount(pair_index, selected[population], len(pair)).astype(np.int64),
        }
    )
    pair_cluster = pair // n_groups
    views = []
    for level in table.taxonomy.levels:
        terms = coded(table.cluster_terms[level])
        with_terms = pairs.assign(term=terms.codes[pair_cluster])
        # groups without a term at this level (the unassigned cells): in no term's count
        views.append(_level_view(level, terms, with_terms[with_terms["term"] >= 0], whole))
    return pd.concat(views, ignore_index=True)


def _level_view(level: str, terms: Coded, pairs: pd.DataFrame, whole) -> pd.DataFrame:
    cells = pairs.groupby("term")[["before", "after"]].sum()
    groups = pairs.drop_duplicates(["term", "group"])
    groups = groups.assign(whole=whole[groups["group"]]).groupby("term")["whole"]
    return pd.DataFrame(
        {
            "level": level,
            "term": terms.categories[cells.index],
            "cells_before": cells["before"].to_numpy(),
            "cells_after": cells["after"].to_numpy(),
            "groups_before": groups.size().reindex(cells.index).to_numpy(),
            "groups_kept_whole": groups.sum().reindex(cells.index).to_numpy().astype(np.int64),
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
        "cells_file" if sampling.get("cells_file") else sampling.get("strategy"),
        summary["selected"].sum(),
    )

