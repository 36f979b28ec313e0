# One subset job per needed matrix file: it gets its matrix itself (cache, download or
# byte ranges). A command rather than script: no script preamble (~0.12 s a job); the
# config's abc block (transport settings: never a rerun trigger) goes as JSON.
import json
import shlex

SUBSET_SCRIPT = shlex.quote(
    os.path.join(workflow.current_basedir, "..", "..", "scripts", "subset_matrix.py")
)
SUBSET_ABC = shlex.quote(json.dumps(ABC))


rule subset_matrix:
    input:
        cells=OUT["cells"],
        matrix=matrix_input,
    output:
        h5ad=f"{SUBSETS}/{{matrix}}.h5ad",
        done=done_marker("subsets", "{matrix}", SUBSET_SETTINGS),
    log:
        f"{LOGS}/subset_matrix/{{matrix}}.log",
    benchmark:
        f"{BENCH}/subset_matrix/{{matrix}}.tsv"
    wildcard_constraints:
        matrix=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    retries: 1
    conda:
        "../../envs/abc.yaml"
    resources:
        mem_mb=subset_mem_mb,
        runtime=subset_runtime,
    params:
        matrix=matrix_of,
        file=matrix_file_fields,  # what identifies the data, for stream and auto
        settings=SUBSET_SETTINGS,
    shell:
        "{PYTHON} {SUBSET_SCRIPT} --cells {input.cells:q} --out {output.h5ad:q}"
        " --done {output.done:q} --matrix {params.matrix:q} --file {params.file:q}"
        " --settings {params.settings:q} --abc {SUBSET_ABC} --log {log:q}"
        " --receipt={input.matrix:q}"
