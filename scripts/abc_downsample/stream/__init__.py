"""Stream mode: a remote h5ad's selected rows read by byte ranges, and auto's model of
the link."""
