# Figures and tables for `snakemake --report report.html`. The plots never fail a run: a
# figure that cannot be drawn becomes a placeholder naming the reason (see plots.py).
REPORT = f"{OUT['dir']}/report"
# the report's two level figures: the profile's top two levels (a dataset of one level
# draws it twice)
REPORT_LEVELS = (LEVELS + LEVELS[-1:])[:2]
REPORT_SAMPLING = {
    "sizes": f"{REPORT}/group_sizes.png",
    # named after their level, and numbered: a one-level dataset draws its level twice
    "level1": f"{REPORT}/cells_per_level1_{REPORT_LEVELS[0]}.png",
    "level2": f"{REPORT}/cells_per_level2_{REPORT_LEVELS[1]}.png",
    "matrices": f"{REPORT}/cells_per_matrix.png",
    "table": f"{REPORT}/sampling_summary.html",
}
REPORT_RUNTIME = {"figure": f"{REPORT}/runtime.png", "table": f"{REPORT}/runtime.html"}
# the first screen: workflow.rst embeds it (not a report() result of its own)
REPORT_LANDING = f"{REPORT}/landing.html"
# The menu's labels are made by the report command: they name no setting of the run (the
# figures and the first screen say what it did, from what it recorded).
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
        # the settings the sample was made with (its threshold, a given cell list)
        sample_done=SAMPLE_DONE,
    output:
        sizes=report(
            REPORT_SAMPLING["sizes"],
            caption="../report/group_sizes.rst",
            category=SAMPLE_CATEGORY,
            labels={"figure": "1. cells per sampling group, before and after"},
        ),
        level1=report(
            REPORT_SAMPLING["level1"],
            caption="../report/cells_per_level.rst",
            category=SAMPLE_CATEGORY,
            labels={"figure": f"2. cells per {REPORT_LEVELS[0]}"},
        ),
        level2=report(
            REPORT_SAMPLING["level2"],
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
            labels={"figure": "5. sampling summary: every group"},
        ),
    log:
        f"{LOGS}/plot_sampling.log",
    benchmark:
        f"{BENCH}/plot_sampling.tsv"
    localrule: True
    conda:
        "../../envs/abc.yaml"
    params:
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
        # what the run did: the result's provenance, not this command's config
        result=OUT["expression"],
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
        benchmarks=BENCH,
        logs=LOGS,
    script:
        "../../scripts/report_landing.py"
