"""Units and the readers' buffer sizes, each defined once. Light on purpose: the Snakefile
imports it (through `resources`), and it imports nothing."""

KiB = 1024
MiB = 1024 * KiB
MB = 1_000_000  # decimal, as network rates and the manifest's sizes are quoted
GB = 1_000_000_000

SUBSET_BATCH_NNZ = 8 * MiB  # non-zeros a subset job reads at once (csr_rows)
CONCAT_BLOCK_NNZ = 4 * MiB  # non-zeros concat copies at once
