"""Each fact in one place: a second copy of a default, a column name, an encoding or the
project's root would drift from the first. These checks fail where one appears."""

import ast
import re
from pathlib import Path

import yaml
from conftest import PROJECT

import abc_downsample
from abc_downsample import config_docs
from abc_downsample.project import CONFIG_SCHEMA, DEFAULT_CONFIG

PACKAGE = PROJECT / "scripts" / "abc_downsample"
# parameters that carry a config value: their only default is config/config.yaml's
CONFIG_PARAMETERS = {"retries", "max_concurrency", "merge_gap", "merge_gap_kb", "part_size",
                     "read_timeout", "max_pool", "bucket", "release", "timeout_s"}  # fmt: skip


def runtime_modules() -> list[Path]:
    """The package's modules, without the demo (synthetic releases write real layouts)."""
    return [p for p in PACKAGE.rglob("*.py") if "demo" not in p.parts]


def schema_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, sub in schema.get("properties", {}).items():
        # a value that is a block, or one of its choices is (decode_mbps: one rate, or one
        # per filter)
        block = next((c for c in [sub, *sub.get("oneOf", [])] if c.get("properties")), None)
        keys += schema_keys(block, f"{prefix}{key}.") if block else [f"{prefix}{key}"]
    return keys


def leaf_keys(config: dict, prefix: str = "") -> list[str]:
    """The dotted keys of a loaded config's values (non-empty blocks are not leaves)."""
    keys = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        block = isinstance(value, dict) and value
        keys += leaf_keys(value, dotted + ".") if block else [dotted]
    return keys


def required_everywhere(schema: dict, where: str = "(top)") -> list[str]:
    """Blocks whose properties are not all required (their default would live elsewhere)."""
    missing = []
    properties = schema.get("properties", {})
    if properties and set(properties) - set(schema.get("required", [])):
        missing.append(f"{where}: {sorted(set(properties) - set(schema.get('required', [])))}")
    for key, sub in properties.items():
        missing += required_everywhere(sub, key)
    return missing


def test_config_readme_is_made_from_the_config_file():
    page = (PROJECT / "config" / "README.md").read_text()
    assert page == config_docs.render(DEFAULT_CONFIG.read_text()), (
        "config/README.md is stale: run `python -m abc_downsample.config_docs` in scripts/"
    )


def test_every_key_has_its_default_in_config_yaml_and_a_rule_in_the_schema():
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    assert sorted(leaf_keys(config)) == sorted(schema_keys(schema))
    assert required_everywhere(schema) == []


def test_no_function_repeats_a_config_default():
    copies = []
    for path in runtime_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            positional = args.posonlyargs + args.args
            with_default = positional[len(positional) - len(args.defaults) :]
            pairs = list(zip(with_default, args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d]
            for arg, default in pairs:
                is_none = isinstance(default, ast.Constant) and default.value is None
                if arg.arg in CONFIG_PARAMETERS and not is_none:
                    copies.append(f"{path.name}:{node.name}({arg.arg}=...)")
    assert copies == []


def modules_with(pattern: str) -> set[str]:
    found = set()
    for path in runtime_modules():
        if re.search(pattern, path.read_text()):
            found.add(str(path.relative_to(PACKAGE)))
    return found


def test_the_cell_list_columns_are_named_once():
    # cells_csv names our output's columns; metadata/tables.py lists the WMB cell table's own
    assert modules_with(r"\"feature_matrix_label\"") == {"cells_csv.py", "metadata/tables.py"}
    assert modules_with(r"\"dataset_label\"") == {"cells_csv.py", "metadata/tables.py"}


def test_anndata_encodings_are_written_in_one_module():
    assert modules_with(r"\"encoding-(type|version)\"") == {"h5ad/encoding.py"}
    demo = [p for p in PACKAGE.rglob("*.py") if "demo" in p.parts]
    assert not [p.name for p in demo if '"encoding-type"' in p.read_text()]


def test_the_project_root_is_found_in_one_place():
    assert modules_with(r"__file__") == {"project.py"}


def test_the_changelog_names_this_version_first():
    changelog = (PROJECT / "CHANGELOG.md").read_text()
    first = re.search(r"^## \[?v?(\d+\.\d+\.\d+)", changelog, flags=re.M)
    assert first and first.group(1) == abc_downsample.__version__
