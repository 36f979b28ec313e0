"""Config validation with one-line messages (Snakemake's validate() prints a schema dump)."""

from pathlib import Path

import jsonschema
import yaml

from .errors import AbcError


def check_config(config: dict, schema_path: str | Path) -> None:
    """Raise AbcError naming the first bad key, what is wrong and where to fix it."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise AbcError(f"config key {key}: {_short(err)}; fix it in your config file or --config")
    _check_combinations(config)


def _short(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown key")
    return err.message


def _check_combinations(config: dict) -> None:
    abc = config["abc"]
    if config["synthetic"]["enabled"] and is_s3_bucket(abc["bucket"]):
        raise AbcError(
            "synthetic.enabled needs abc.bucket to be a local directory (e.g. demo/bucket), "
            f"not the S3 bucket '{abc['bucket']}'"
        )


def is_s3_bucket(bucket: str) -> bool:
    """A bare bucket name or s3:// URL; anything with a path separator is a local mirror."""
    if bucket.startswith("s3://"):
        return True
    return not (bucket.startswith("file://") or "/" in bucket or bucket.startswith("."))


def local_bucket_dir(bucket: str) -> str:
    return bucket.removeprefix("file://")
