"""anndata's on-disk encodings, in one place: the attribute names, each element kind's
encoding version as anndata writes it, and the string dtype of its string arrays."""

import h5py

TYPE = "encoding-type"
VERSION = "encoding-version"
VERSIONS = {
    "anndata": "0.1.0",
    "dict": "0.1.0",
    "csr_matrix": "0.1.0",
    "dataframe": "0.2.0",
    "array": "0.2.0",
    "string-array": "0.2.0",
    "categorical": "0.2.0",
    "string": "0.2.0",
}
STRINGS = h5py.string_dtype("utf-8")  # anndata's string-array dtype


def encode(node: h5py.HLObject, kind: str) -> None:
    """Mark ``node`` as anndata marks an element of ``kind``."""
    node.attrs[TYPE] = kind
    node.attrs[VERSION] = VERSIONS[kind]


def encoding_of(node: h5py.HLObject, default: str = "") -> str:
    return node.attrs.get(TYPE, default)
