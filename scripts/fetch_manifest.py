"""Rule fetch_manifest: the release manifest, validated, written atomically into the cache."""

import json

from abc_downsample.atomic import atomic_path
from abc_downsample.errors import AbcError
from abc_downsample.manifest import Manifest, newest_release
from abc_downsample.rule_io import log, run
from abc_downsample.storage import open_store


def main():
    abc, key = snakemake.config["abc"], snakemake.params.key
    store = open_store(abc["bucket"], abc["endpoint_url"])
    try:
        raw = store.get_bytes(key)
    except AbcError as err:
        raise _explain_missing(store, key, err) from None
    try:
        manifest = Manifest(json.loads(raw), key)
    except json.JSONDecodeError as err:
        raise AbcError(f"{key} in {abc['bucket']} is not valid JSON ({err})") from None
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_bytes(raw)
    log.info("manifest %s: %d files", manifest.version, len(manifest.entries))


def _explain_missing(store, key, err):
    """An unknown release says which releases exist; other failures pass through."""
    try:
        keys = store.list_keys("releases/")
    except AbcError:
        return err
    if key in keys:
        return err
    newest = newest_release(keys) if keys else "none found"
    return AbcError(
        f"release manifest {key} is not in the bucket: set abc.release to an existing "
        f"release (the newest is {newest}) or to latest"
    )


run(main, snakemake.log[0])
