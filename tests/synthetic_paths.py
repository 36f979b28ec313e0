"""Keys of the synthetic WMB-10X release (``abc_downsample.demo``), named once for the
tests that read its files directly."""

from abc_downsample.demo.wmb import CELL_METADATA_DIR, TAXONOMY_DIR

CELLS = f"{CELL_METADATA_DIR}/cell_metadata.csv"
GENES = f"{CELL_METADATA_DIR}/gene.csv"
TERM_SET = f"{TAXONOMY_DIR}/cluster_annotation_term_set.csv"
MEMBERSHIP = f"{TAXONOMY_DIR}/cluster_to_cluster_annotation_membership.csv"
PIVOTED = f"{TAXONOMY_DIR}/views/cluster_to_cluster_annotation_membership_pivoted.csv"
COLORS = f"{TAXONOMY_DIR}/views/cluster_to_cluster_annotation_membership_color.csv"
