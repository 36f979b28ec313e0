"""Stage concat: the subsets, the sample's metadata and the taxonomy into one h5ad."""
