# One subset job per needed matrix file: it gets its matrix itself (cache, download or
# byte ranges).


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
    script:
        "../../scripts/subset_matrix.py"
