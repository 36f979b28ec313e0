"""Config validation with one-line messages (Snakemake's validate() prints a schema dump)."""

from pathlib import Path

import jsonschema
import yaml

from abc_downsample.cache.store import local_root
from abc_downsample.errors import AbcError
from abc_downsample.project import DEFAULT_CONFIG


def abc_with_defaults(partial: dict) -> dict:
    """The default config's ``abc`` block with ``partial`` merged in (nested blocks too),
    for callers outside Snakemake (tests, benchmarks) of functions that take the block."""
    abc = yaml.safe_load(DEFAULT_CONFIG.read_text())["abc"]
    for key, value in partial.items():
        abc[key] = {**abc[key], **value} if isinstance(value, dict) else value
    return abc


def check_config(config: dict, schema_path: str | Path) -> None:
    """Raise AbcError naming the first bad key, what is wrong and where to fix it."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    coerce_command_line_strings(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise AbcError(f"config key {key}: {_short(err)}; fix it in your config file or --config")
    _check_combinations(config)


def coerce_command_line_strings(config: dict, schema: dict) -> None:
    """Turn "false"/"8" into False/8 where the schema wants them, in place.

    Snakemake passes nested ``--config abc='{keep_matrices: false}'`` values as strings.
    """
    for key, sub in schema.get("properties", {}).items():
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, dict):
            coerce_command_line_strings(value, sub)
        elif isinstance(value, str):
            config[key] = _typed(value, sub.get("type"))


def _typed(value: str, kind) -> object:
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "integer" and value.lstrip("-").isdigit():
        return int(value)
    if "null" in (kind or []) and value.lower() in ("null", "none"):
        return None
    return value


def _short(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown key")
    return err.message


def _check_combinations(config: dict) -> None:
    abc = config["abc"]
    if config["sampling"]["cells_file"] and config["sampling"]["within"]:
        raise AbcError(
            "sampling.cells_file and sampling.within are both set: cells_file takes exactly its "
            "cells, within samples among its cells; set one of them to null"
        )
    if config["synthetic"]["enabled"] and local_root(abc["bucket"]) is None:
        raise AbcError(
            "synthetic.enabled needs abc.bucket to be a local directory (e.g. demo/bucket), "
            f"not the S3 bucket '{abc['bucket']}'"
        )
