"""Stage sample_cells: stratified sampling that keeps rare groups whole."""
