# abc-downsample. The workflow is workflow/Snakefile (the Snakemake workflow catalog's
# layout); this file lets `snakemake` run from the project root as well, with the same
# default target (a plain `include:` would keep none).
workflow.include("workflow/Snakefile", overwrite_default_target=True)
