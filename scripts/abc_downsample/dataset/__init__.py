"""What is specific to one 10x dataset: its profile (where its cell table, group key,
taxonomy and genes are)."""
