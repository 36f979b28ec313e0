"""Which release a run reads and its manifest (settled while the workflow is read)."""
