"""The release manifest: which files a release holds, where, how big, with which MD5."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from abc_downsample.errors import AbcError

RELEASE_KEY = re.compile(r"^releases/(\d{8})/manifest\.json$")


@dataclass(frozen=True)
class FileEntry:
    """One file of the manifest: its bucket key (= cache-relative path), size and MD5."""

    directory: str
    kind: str
    name: str
    variant: str | None
    relative_path: str
    size: int
    md5: str
    version: str


def manifest_key(release: str) -> str:
    return f"releases/{release}/manifest.json"


class Manifest:
    def __init__(self, data: dict, source: str = "manifest"):
        for key in ("version", "file_listing", "directory_listing"):
            if key not in data:
                raise AbcError(f"{source} has no '{key}': it is not an ABC Atlas release manifest")
        self.data = data
        self.source = source
        self.entries = list(_walk_file_listing(data["file_listing"]))
        self._by_path = {e.relative_path: e for e in self.entries}

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise AbcError(f"manifest {path} does not exist: run the fetch_manifest rule") from None
        except json.JSONDecodeError as err:
            raise AbcError(
                f"{path} is not valid JSON ({err}): delete it to fetch it again"
            ) from None
        return cls(data, str(path))

    @property
    def version(self) -> str:
        return self.data["version"]

    def entry_for(self, relative_path: str) -> FileEntry:
        try:
            return self._by_path[relative_path]
        except KeyError:
            raise AbcError(
                f"{relative_path} is not listed in {self.source}: check the release"
            ) from None

    def metadata_file(self, directory: str, name: str, ext: str = "csv") -> FileEntry:
        """A metadata table, e.g. ("WMB-10X", "cell_metadata")."""
        for e in self.entries:
            if (e.directory, e.kind, e.name) == (directory, "metadata", name) and (
                e.relative_path.endswith(f".{ext}")
            ):
                return e
        raise AbcError(f"release {self.version} has no metadata table {directory}/{name}.{ext}")

    def metadata_tables(self) -> dict[str, dict[str, FileEntry]]:
        """{directory: {table name: entry}} of every CSV metadata table."""
        tables: dict[str, dict[str, FileEntry]] = {}
        for e in self.entries:
            if e.kind == "metadata" and e.relative_path.endswith(".csv"):
                tables.setdefault(e.directory, {})[e.name] = e
        return tables

    def matrix_file(self, matrix: str, variant: str) -> FileEntry:
        """An expression matrix by feature_matrix_label, e.g. ("WMB-10Xv3-MB", "raw")."""
        for e in self.entries:
            if (e.kind, e.name, e.variant) == ("expression_matrices", matrix, variant):
                return e
        raise AbcError(
            f"release {self.version} has no {variant} matrix {matrix}: "
            "check abc.variant and the cells' feature_matrix_label"
        )

    def directory_versions(self) -> dict[str, dict[str, str]]:
        """{directory: {kind: version}}, for provenance."""
        return {
            directory: {kind: d["version"] for kind, d in listing["directories"].items()}
            for directory, listing in self.data["directory_listing"].items()
        }


def _walk_file_listing(listing: dict):
    """Yield every file entry; matrices sit one level deeper, under raw/log2."""
    for directory, kinds in listing.items():
        for kind, names in kinds.items():
            for name, node in names.items():
                if "files" in node:
                    yield from _entries(directory, kind, name, None, node["files"])
                else:
                    for variant, sub in node.items():
                        yield from _entries(directory, kind, name, variant, sub.get("files", {}))


def _entries(directory, kind, name, variant, files: dict):
    for entry in files.values():
        yield FileEntry(
            directory=directory,
            kind=kind,
            name=name,
            variant=variant,
            relative_path=entry["relative_path"],
            size=int(entry["size"]),
            md5=entry["file_hash"],
            version=entry.get("version", ""),
        )


def newest_release(keys: list[str]) -> str:
    """The newest release among bucket keys (dates sort lexicographically)."""
    releases = [m.group(1) for k in keys if (m := RELEASE_KEY.match(k))]
    if not releases:
        raise AbcError("no releases/<date>/manifest.json found in the bucket: check abc.bucket")
    return max(releases)
