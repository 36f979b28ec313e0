"""Where the workflow's own files are: the project root found once, from this package."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]  # scripts/abc_downsample/ -> the project
CONFIG_DIR = PROJECT / "config"
DEFAULT_CONFIG = CONFIG_DIR / "config.yaml"
DATASETS_DIR = CONFIG_DIR / "datasets"
SCHEMAS_DIR = PROJECT / "workflow" / "schemas"
CONFIG_SCHEMA = SCHEMAS_DIR / "config.schema.yaml"
DATASET_SCHEMA = SCHEMAS_DIR / "dataset.schema.yaml"
# the public bucket's release manifests shipped with the workflow (releases never change):
# parsing the workflow needs no network for them
SHIPPED_RELEASES = PROJECT / "workflow" / "resources"
