# One download job (download mode) and one subset job per needed matrix file.
rule download_matrix:
    input:
        manifest=ancient(MANIFEST),
    output:
        # the receipt; with keep_matrices false the subset job deletes the matrix, and the
        # receipt goes with it, so a rebuilt subset fetches the matrix again
        (
            f"{RECEIPTS}/{{relpath}}.json"
            if ABC["keep_matrices"]
            else temp(f"{RECEIPTS}/{{relpath}}.json")
        ),
    log:
        f"{LOGS}/download/{{relpath}}.log",
    benchmark:
        f"{BENCH}/download/{{relpath}}.tsv"
    wildcard_constraints:
        relpath=r"expression_matrices/.+\.h5ad",
    localrule: ABC["download_on_host"]
    conda:
        "../../envs/abc.yaml"
    resources:
        mem_mb=1024,
        runtime=download_runtime,
    params:
        relative_path=relpath_of,
    script:
        "../../scripts/download_file.py"


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
