"""The h5ad format, read and written in blocks with h5py: CSR rows, obs/var tables, the
writers, anndata's encodings."""
