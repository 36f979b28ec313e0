"""Stage subset_matrix: one matrix file's sampled cells into a subset h5ad."""
