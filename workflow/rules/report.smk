# Figures and tables for `snakemake --report report.html`. The plots never fail a run: a
# figure that cannot be drawn becomes a placeholder naming the reason (see plots.py).
from abc_downsample.run_messages import group_name

REPORT = f"{OUT['dir']}/report"
REPORT_SAMPLING = {
    "sizes": f"{REPORT}/group_sizes.png",
    "classes": f"{REPORT}/cells_per_class.png",
    "subclasses": f"{REPORT}/cells_per_subclass.png",
    "matrices": f"{REPORT}/cells_per_matrix.png",
    "table": f"{REPORT}/sampling_summary.html",
}
REPORT_RUNTIME = {"figure": f"{REPORT}/runtime.png", "table": f"{REPORT}/runtime.html"}
# the first screen: workflow.rst embeds it (not a report() result of its own)
REPORT_LANDING = f"{REPORT}/landing.html"
# how figures name a sampling group
GROUP = group_name(config["sampling"]["cluster_column"])
# the report's two level figures: the profile's top two levels; a dataset without taxonomy
# has one, its group key (taxonomy.read_taxonomy)
_LEVELS = list(DATASET.taxonomy.levels) or [DATASET.cells.group]
REPORT_LEVELS = (_LEVELS + _LEVELS[-1:])[:2]
SAMPLE_CATEGORY = "1. What the sample kept"
COST_CATEGORY = "2. What the run cost"


report: "../report/workflow.rst"


# Every figure and table of the report; `rule all` asks for them.
REPORT_TARGETS = [*REPORT_SAMPLING.values(), *REPORT_RUNTIME.values(), REPORT_LANDING]


rule plot_sampling:
    input:
        summary=OUT["summary"],
        levels=OUT["levels"],
        cells=OUT["cells"],
        taxonomy=taxonomy_path,  # no colours: plots use a palette
    output:
        sizes=report(
            REPORT_SAMPLING["sizes"],
            caption="../report/group_sizes.rst",
            category=SAMPLE_CATEGORY,
            labels={"figure": f"1. cells per {GROUP}, before and after"},
        ),
        classes=report(
            REPORT_SAMPLING["classes"],
            caption="../report/cells_per_level.rst",
            category=SAMPLE_CATEGORY,
            labels={"figure": f"2. cells per {REPORT_LEVELS[0]}"},
        ),
        subclasses=report(
            REPORT_SAMPLING["subclasses"],
            caption="../report/cells_per_level.rst",
            category=SAMPLE_CATEGORY,
            labels={"figure": f"3. cells per {REPORT_LEVELS[1]}"},
        ),
        matrices=report(
            REPORT_SAMPLING["matrices"],
            caption="../report/cells_per_matrix.rst",
            category=SAMPLE_CATEGORY,
            labels={"figure": "4. cells per matrix file"},
        ),
        table=report(
            REPORT_SAMPLING["table"],
            caption="../report/sampling_summary.rst",
            category=SAMPLE_CATEGORY,
            labels={"figure": f"5. sampling summary: every {GROUP}"},
        ),
    log:
        f"{LOGS}/plot_sampling.log",
    benchmark:
        f"{BENCH}/plot_sampling.tsv"
    localrule: True
    conda:
        "../../envs/abc.yaml"
    params:
        min_cluster_size=config["sampling"]["min_cluster_size"],
        cluster_column=config["sampling"]["cluster_column"],
        levels=REPORT_LEVELS,
        dataset=DATASET.raw,
    script:
        "../../scripts/plot_sampling.py"


rule plot_runtime:
    input:
        # the dataset and the other plots first, so that every benchmark file exists
        expression=OUT["expression"],
        plots=list(REPORT_SAMPLING.values()),
    output:
        figure=report(
            REPORT_RUNTIME["figure"],
            caption="../report/runtime.rst",
            category=COST_CATEGORY,
            labels={"figure": "1. runtime and memory per rule"},
        ),
        table=report(
            REPORT_RUNTIME["table"],
            caption="../report/runtime.rst",
            category=COST_CATEGORY,
            labels={"figure": "2. runtime and memory per job (table)"},
        ),
    log:
        f"{LOGS}/plot_runtime.log",
    localrule: True
    conda:
        "../../envs/abc.yaml"
    params:
        benchmarks=BENCH,
    script:
        "../../scripts/plot_runtime.py"


rule report_landing:
    input:
        manifest=ancient(MANIFEST),
        summary=OUT["summary"],
        levels=OUT["levels"],
        cells=OUT["cells"],
        plan=PLAN["json"],
        # last: every job's benchmark file exists by then
        runtime=REPORT_RUNTIME["figure"],
    output:
        html=REPORT_LANDING,
    log:
        f"{LOGS}/report_landing.log",
    localrule: True
    conda:
        "../../envs/abc.yaml"
    params:
        min_cluster_size=config["sampling"]["min_cluster_size"],
        min_cells_per_group=config["sampling"]["min_cells_per_group"],
        cluster_column=config["sampling"]["cluster_column"],
        benchmarks=BENCH,
        logs=LOGS,
    script:
        "../../scripts/report_landing.py"
