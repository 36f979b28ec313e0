# The subsets, the cells' metadata and taxonomy, into one AnnData.


rule concat:
    input:
        done=subsets_done,
        subsets=subset_paths,
        cells=OUT["cells"],
        sample_rows=SAMPLE_ROWS,
        population=SAMPLE_POPULATION,
        # the settings the sample was made with: the result's provenance says them
        sample_done=SAMPLE_DONE,
        taxonomy=taxonomy_path,
        genes=genes_path,
        panel=CONCAT_SETTINGS.get("genes_file", []),
    output:
        h5ad=OUT["expression"],
        done=CONCAT_DONE,
    log:
        f"{LOGS}/concat.log",
    benchmark:
        f"{BENCH}/concat.tsv"
    conda:
        "../../envs/abc.yaml"
    resources:
        mem_mb=concat_mem_mb,
        runtime=concat_runtime,
    params:
        provenance=provenance,
        dataset=DATASET.raw,
        settings=CONCAT_SETTINGS,  # the gene panel (a list of genes, or its file's MD5)
    script:
        "../../scripts/concat.py"
