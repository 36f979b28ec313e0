"""The release's CSV tables: the cell and gene tables, the taxonomy."""
