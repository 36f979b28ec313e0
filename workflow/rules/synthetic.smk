# The offline demo: a small synthetic release in the real format, in a local "bucket".
if config["synthetic"]["enabled"]:

    rule synthetic_release:
        output:
            manifest=f"{local_root(ABC['bucket'])}/{manifest_key(RELEASE)}",
        log:
            f"{LOGS}/synthetic_release.log",
        localrule: True
        conda:
            "../../envs/abc.yaml"
        params:
            root=lambda wc, output: output.manifest.removesuffix(manifest_key(RELEASE)),
            synthetic={**config["synthetic"], "release": RELEASE},
        script:
            "../../scripts/make_synthetic_release.py"
