"""The sample's cell list (downsampled_cells.csv): the contract between sampling and the
steps after it. Its columns are named alike for every dataset (the profile's own names are
renamed), then the group column and the profile's ``cells.keep`` columns; the subsets' and
the result's ``obs`` are indexed by the same cell label."""

CELL_LABEL = "cell_label"
MATRIX = "feature_matrix_label"  # the cell's matrix file
DATASET_LABEL = "dataset_label"  # the matrix's directory
