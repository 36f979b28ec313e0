"""The run's dataset profile: ``abc.dataset`` names a profile file (``config/datasets`` or a
path), or a dataset of the release whose profile is inferred (``infer``). The main process
infers it once per release and records it in the project; jobs read the record, so cluster
jobs never read the bucket to know the dataset, and reruns need no network."""

from collections.abc import Callable
from pathlib import Path

import yaml

from abc_downsample.atomic import write_if_changed
from abc_downsample.cache.layout import cache_path
from abc_downsample.dataset.infer import ReleaseReader, infer_profile
from abc_downsample.dataset.profile import Dataset, dataset_from_dict, load_dataset, profile_file
from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import FileEntry, Manifest

HEAD_BYTES = 1 << 16  # a header line fits
WHOLE_BYTES = 8 << 20  # the largest table inference reads whole (a term-set table: KBs)


def run_dataset(value: str, manifest: Manifest, abc: dict, record: Path, main: bool,
                say: Callable[[str], None]) -> Dataset:  # fmt: skip
    """The profile ``abc.dataset`` names; inferred (and recorded at ``record``) for a
    dataset without a profile file."""
    path = profile_file(value)
    if path is not None:
        return load_dataset(path)
    if not main or record.is_file():
        if not record.is_file():
            raise AbcError(f"{record} is missing: run snakemake from the submit host, which "
                           "infers the profile of abc.dataset once per release")  # fmt: skip
        if main:
            say(f"abc.dataset {value}: the profile inferred from release {manifest.version}, "
                f"in {record}")
        return load_dataset(record)
    raw, why = infer_profile(value, release_reader(manifest, abc))
    text = profile_text(raw, why)
    write_if_changed(record, text)
    say(f"abc.dataset {value} has no profile file: inferred from release {manifest.version}"
        f" (saved as {record}; copy, edit and pass it as abc.dataset to change it):\n"
        + text.rstrip())  # fmt: skip
    return dataset_from_dict(raw, str(record))


def profile_text(raw: dict, why: list[str]) -> str:
    """The profile as YAML, the reasons for each choice as comments above it."""
    notes = "".join(f"# {line}\n" for line in why)
    return notes + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=92)


def release_reader(manifest: Manifest, abc: dict) -> ReleaseReader:
    """Reads listed files from the cache where it holds them, else from the bucket."""
    store = []

    def read(entry: FileEntry, n: int) -> bytes:
        n = min(n, entry.size)
        local = cache_path(abc["cache_dir"], entry.relative_path)
        if local.is_file() and local.stat().st_size == entry.size:
            with open(local, "rb") as handle:
                return handle.read(n)
        if not store:
            from abc_downsample.cache.store import store_from_config

            store.append(store_from_config(abc))
        return store[0].read_range(entry.relative_path, 0, n)

    def whole(entry: FileEntry) -> bytes:
        if entry.size > WHOLE_BYTES:
            raise AbcError(f"{entry.relative_path} is {entry.size} bytes, more than a term-set "
                           "table holds: write a profile for this dataset")  # fmt: skip
        return read(entry, entry.size)

    return ReleaseReader(manifest, lambda entry: read(entry, HEAD_BYTES), whole)
