# abc-downsample: a stratified ~200,000-cell subset of the ABC Atlas WMB-10X data.
# Entry point: configuration, validation, the rules of each stage, the default target.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))


configfile: os.path.join(workflow.basedir, "config/config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/metadata.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/matrices.smk"
include: "workflow/rules/concat.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/messages.smk"


rule all:
    default_target: True
    input:
        OUT["expression"],
        # the subsets are results too: a deleted one is rebuilt, then the final file
        subset_paths,
        SAMPLE_DONE,
        OUT["summary"],
        OUT["levels"],
        REPORT_TARGETS,
