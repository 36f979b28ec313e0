"""abc-downsample: a stratified, memory-bounded subset of the ABC Atlas WMB-10X data."""

__version__ = "0.1.0"
