"""abc-downsample: a stratified, memory-bounded subset of the ABC Atlas WMB-10X data."""

import sys

__version__ = "0.2.0"

if "/.snakemake/scripts/" in sys.argv[0]:  # a rule script: Ctrl-C during imports is one line too
    from abc_downsample.rule_io import quiet_interrupts

    quiet_interrupts()
