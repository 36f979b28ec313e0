"""Config validation with one-line messages (Snakemake's validate() prints a schema dump),
and the defaults as config/config.yaml writes them."""

import difflib
import functools
from pathlib import Path

import jsonschema
import yaml

from abc_downsample.errors import AbcError
from abc_downsample.project import DEFAULT_CONFIG


@functools.cache
def _defaults_text() -> str:
    return DEFAULT_CONFIG.read_text()


def default_config() -> dict:
    """config/config.yaml as it ships: the one place every default is written."""
    return yaml.safe_load(_defaults_text())


def abc_with_defaults(partial: dict) -> dict:
    """The default config's ``abc`` block with ``partial`` merged in (nested blocks too),
    for callers outside Snakemake (tests, benchmarks) of functions that take the block."""
    abc = default_config()["abc"]
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
        return _unknown_keys(err)
    return err.message


def _unknown_keys(err: jsonschema.ValidationError) -> str:
    """ "unknown key 'targt_cells' (did you mean 'target_cells'?)": the nearest valid key."""
    known = list(err.schema.get("properties", {}))
    unknown = [key for key in err.instance if key not in known]
    texts = []
    for key in unknown:
        near = difflib.get_close_matches(str(key), known, n=1)
        texts.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    valid = f"; valid keys: {', '.join(known)}" if known else ""
    return f"unknown key{'s' * (len(unknown) > 1)} {', '.join(texts)}{valid}"


def _check_combinations(config: dict) -> None:
    from abc_downsample.cache.store import local_root  # the S3 client: only when checking

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
