"""Dataset profiles: everything specific to one 10x dataset of the ABC Atlas, in one file.

A profile (``config/datasets/<name>.yaml``, or a file of the user's own) says where the
dataset's cell table is and which columns name the cell, its matrix and its group; where
the group key comes from (the cell table, or a per-cell membership table); its taxonomy and
how to read it; its gene table. ``load_dataset`` checks it against
``workflow/schemas/dataset.schema.yaml`` and returns a typed ``Dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from abc_downsample.errors import AbcError
from abc_downsample.project import DATASET_SCHEMA as SCHEMA
from abc_downsample.project import DATASETS_DIR


@dataclass(frozen=True)
class Table:
    """A metadata table of the release: file_listing/<directory>/metadata/<name>."""

    directory: str
    name: str


@dataclass(frozen=True)
class CellTable(Table):
    """A per-cell table other than the cell table, joined to it on the cell label."""

    label: str = "cell_label"


@dataclass(frozen=True)
class Cells:
    table: Table
    label: str  # the cell's label, matching the matrices' obs index
    matrix: str  # the cell's matrix file (feature_matrix_label)
    dataset: str  # the matrix's directory (dataset_label)
    group: str  # the group key the taxonomy is keyed by (cluster_alias)
    membership: CellTable | None  # a per-cell table holding `group`
    keep: tuple[str, ...]  # more columns for downsampled_cells.csv, when present
    umap: tuple[str, ...] | None  # the atlas's 2-d embedding: columns of the cells' rows
    embedding: CellTable | None = None  # a per-cell table holding `umap`, if not the cell table

    @property
    def side_tables(self) -> list[CellTable]:
        """The per-cell tables joined to the cell table, membership first."""
        return [t for t in (self.membership, self.embedding) if t is not None]


@dataclass(frozen=True)
class Taxonomy:
    format: str  # long, pivoted or none
    directory: str | None
    levels: tuple[str, ...]  # the hierarchy, top first
    annotations: tuple[str, ...]  # term sets outside it (neurotransmitter)
    terms: str | None = None  # pivoted: the terms table; long: the term table (colours)
    colors: str | None = None  # pivoted: the colour table (None: the terms table)
    color_columns: dict = field(default_factory=dict)  # pivoted: level -> colour column
    views: tuple[str, ...] = ()  # long: per-group tables whose columns are annotations too

    @property
    def columns(self) -> tuple[str, ...]:
        """The taxonomy's columns in the result's obs: annotations, then levels."""
        return (*self.annotations, *self.levels)

    def tables(self) -> list[Table]:
        """The taxonomy's files, in the order the readers take them."""
        if self.format == "long":
            names = ["cluster_annotation_term_set", "cluster_to_cluster_annotation_membership"]
            names += ([self.terms] if self.terms else []) + list(self.views)
            return [Table(self.directory, n) for n in names]
        if self.format == "pivoted":
            names = [self.terms] + ([self.colors] if self.colors else [])
            return [Table(self.directory, n) for n in names]
        return []

    def color_column(self, level: str) -> str:
        return self.color_columns.get(level, f"{level}_color")


@dataclass(frozen=True)
class Genes:
    table: Table
    id: str
    by_matrix: dict  # matrix label -> gene table name (same directory)
    genome: str  # the genes' reference, "unknown" where the profile names none

    def table_for(self, matrix: str) -> Table:
        return Table(self.table.directory, self.by_matrix.get(matrix, self.table.name))


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # the profile file
    confidence: str
    cells: Cells
    taxonomy: Taxonomy
    genes: Genes | None  # None: the matrices' own genes (their var) alone
    raw: dict  # the profile as written: what results depend on, for settings and provenance

    def fix(self, key: str) -> str:
        """The end of a one-line error: which profile key to fix, where."""
        return f"fix {key} in the dataset profile {self.source}"


def profile_file(value: str, datasets_dir: Path = DATASETS_DIR) -> Path | None:
    """The profile file ``abc.dataset`` names: a path (which must exist), a name with a file
    in ``config/datasets``, or None (a dataset whose profile is inferred from the release)."""
    value = str(value)
    if value.endswith((".yaml", ".yml")) or "/" in value:
        if not Path(value).is_file():
            raise AbcError(f"abc.dataset {value!r}: no such profile file; fix the path, or "
                           "give a dataset name (see config/datasets/README.md)")  # fmt: skip
        return Path(value)
    path = Path(datasets_dir) / f"{value}.yaml"
    return path if path.is_file() else None


def dataset_name(abc: dict) -> str:
    """The name of the dataset ``abc.dataset`` names (a profile file's ``name``)."""
    path = profile_file(abc["dataset"])
    return abc["dataset"] if path is None else read_profile(path).get("name", path.stem)


def profile_path(name_or_path: str, datasets_dir: Path = DATASETS_DIR) -> Path:
    """A profile's file: a name from ``config/datasets`` or a path to a YAML file."""
    path = profile_file(name_or_path, datasets_dir)
    if path is None:
        known = sorted(p.stem for p in Path(datasets_dir).glob("*.yaml"))
        raise AbcError(
            f"abc.dataset {name_or_path!r} has no profile file: use one of {', '.join(known)}, "
            "a dataset of the release (its profile is inferred), or a profile of your own"
        )
    return path


def load_dataset(name_or_path: str | None = None, datasets_dir: Path = DATASETS_DIR) -> Dataset:
    """The checked profile of ``abc.dataset`` (a name or a path; None: the config's default)."""
    if name_or_path is None:
        from abc_downsample.config_check import default_config

        name_or_path = default_config()["abc"]["dataset"]
    path = profile_path(name_or_path, datasets_dir)
    return dataset_from_dict(read_profile(path), str(path))


def read_profile(path: Path) -> dict:
    """A profile file's content (whole or partial), or a one-line error."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        reason = str(err).splitlines()[0]
        raise AbcError(f"dataset profile {path} is not valid YAML ({reason}): fix it") from None
    if not isinstance(raw, dict):
        raise AbcError(f"dataset profile {path} is not a mapping of keys: see config/datasets")
    return raw


def dataset_from_dict(raw: dict, source: str = "(profile)") -> Dataset:
    """A ``Dataset`` from a profile's content (as rules pass it to their scripts)."""
    check_profile(raw, source)
    cells, taxonomy, genes = raw["cells"], raw["taxonomy"], raw["genes"]
    return Dataset(
        name=raw["name"],
        source=source,
        confidence=raw["confidence"],
        cells=Cells(
            table=Table(**cells["table"]),
            label=cells["label"],
            matrix=cells["matrix"],
            dataset=cells["dataset"],
            group=cells["group"],
            membership=_cell_table(cells["membership"]),
            keep=tuple(cells["keep"]),
            umap=tuple(cells["umap"]) if cells["umap"] else None,
            embedding=_cell_table(cells.get("embedding")),
        ),
        taxonomy=Taxonomy(
            format=taxonomy["format"],
            directory=taxonomy.get("directory"),
            levels=tuple(taxonomy["levels"]),
            annotations=tuple(taxonomy["annotations"]),
            terms=taxonomy.get("terms"),
            colors=taxonomy.get("colors"),
            color_columns=dict(taxonomy.get("color_columns") or {}),
            views=tuple(taxonomy.get("views") or ()),
        ),
        genes=_genes(genes),
        raw=raw,
    )


def _cell_table(spec: dict | None) -> CellTable | None:
    return CellTable(spec["directory"], spec["name"], spec["label"]) if spec else None


def _genes(spec: dict | None) -> Genes | None:
    if spec is None:
        return None
    return Genes(
        table=Table(spec["directory"], spec["name"]),
        id=spec["id"],
        by_matrix=dict(spec.get("by_matrix") or {}),
        genome=spec.get("genome", "unknown"),
    )


def check_profile(raw, source: str) -> None:
    """One line naming the first bad key of a profile."""
    schema = yaml.safe_load(SCHEMA.read_text())
    if not isinstance(raw, dict):
        raise AbcError(f"dataset profile {source} is not a mapping of keys: see config/datasets")
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(raw))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        message = err.message.replace("Additional properties are not allowed", "unknown key")
        raise AbcError(f"dataset profile {source}, key {key}: {message}; fix it in that file")
    tax = raw["taxonomy"]
    if tax["format"] == "pivoted" and not tax.get("terms"):
        raise AbcError(f"dataset profile {source}, key taxonomy.terms: a pivoted taxonomy "
                       "needs its terms table; fix it in that file")  # fmt: skip
    overlap = set(tax["levels"]) & set(tax["annotations"])
    if overlap:
        raise AbcError(f"dataset profile {source}, key taxonomy.annotations: {sorted(overlap)} "
                       "are levels too; list each term set once")  # fmt: skip


def dataset_of_rule(params, abc: dict) -> Dataset:
    """The profile a rule passes as ``params.dataset`` (the workflow's, inferred or not)."""
    return dataset_from_dict(dict(params.dataset), abc.get("dataset", "(profile)"))


def as_list(value) -> list:
    """A rule input that may be one path or several, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, (str, Path)) else list(value)
