"""Rules export_r and r_objects: the result for R."""
