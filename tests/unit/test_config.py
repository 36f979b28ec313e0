import copy

import pytest
import yaml
from conftest import PROJECT

from abc_downsample.config_check import check_config
from abc_downsample.errors import AbcError

SCHEMA = PROJECT / "workflow/schemas/config.schema.yaml"


def _default():
    return yaml.safe_load((PROJECT / "config/config.yaml").read_text())


def test_shipped_configs_are_valid():
    check_config(_default(), SCHEMA)
    demo = _default()
    for section, values in yaml.safe_load((PROJECT / "config/demo.yaml").read_text()).items():
        demo[section].update(values)
    check_config(demo, SCHEMA)


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("abc", "variant", "log3", "config key abc.variant: 'log3' is not one of"),
        ("abc", "release", "2025-05-31", "config key abc.release"),
        ("sampling", "target_cells", "many", "config key sampling.target_cells: 'many'"),
        ("sampling", "target_cell", 5, "unknown key"),
        ("sampling", "strategy", "random", "config key sampling.strategy"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(section, key, value, expected):
    config = copy.deepcopy(_default())
    config[section][key] = value
    with pytest.raises(AbcError) as err:
        check_config(config, SCHEMA)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "where, key, suggested",
    [(("sampling",), "targt_cells", "target_cells"), ((), "sampeling", "sampling"),
     (("abc", "stream"), "timeout", "timeout_s")],  # fmt: skip
)
def test_an_unknown_key_suggests_the_nearest_valid_one(where, key, suggested):
    config = _default()
    block = config
    for name in where:
        block = block[name]
    block[key] = 5
    with pytest.raises(AbcError) as err:
        check_config(config, SCHEMA)
    assert f"unknown key {key!r} (did you mean {suggested!r}?)" in str(err.value)


def test_synthetic_release_needs_a_local_bucket():
    config = _default()
    config["synthetic"]["enabled"] = True
    with pytest.raises(AbcError, match="local directory"):
        check_config(config, SCHEMA)


def test_command_line_strings_become_the_types_the_schema_wants():
    config = _default()
    config["abc"].update(keep_matrices="false", endpoint_url="null")
    config["sampling"]["target_cells"] = "1500"
    check_config(config, SCHEMA)
    assert config["abc"]["keep_matrices"] is False
    assert config["abc"]["endpoint_url"] is None
    assert config["sampling"]["target_cells"] == 1500
