"""Two HDF5 files compared group by group: attributes, dtypes and values."""

import h5py
import numpy as np


def h5_tree(path) -> dict:
    """Every group's and dataset's attributes and every dataset's values, by name."""
    tree = {}

    def visit(name, node):
        attrs = {k: np.asarray(v).tolist() for k, v in node.attrs.items()}
        value = node[()] if isinstance(node, h5py.Dataset) else None
        dtype = node.dtype.str if isinstance(node, h5py.Dataset) else None
        tree[name] = (attrs, dtype, value)

    with h5py.File(path) as f:
        f.visititems(visit)
    return tree


def h5_differences(a, b) -> list[str]:
    """Names of the groups/datasets whose attributes, dtype or values differ."""
    tree_a, tree_b = h5_tree(a), h5_tree(b)
    differ = sorted(tree_a.keys() ^ tree_b.keys())
    for name in tree_a.keys() & tree_b.keys():
        (attrs, dtype, value), (other_attrs, other_dtype, other_value) = tree_a[name], tree_b[name]
        same_value = value is None or np.array_equal(value, other_value)
        if attrs != other_attrs or dtype != other_dtype or not same_value:
            differ.append(name)
    return sorted(differ)


def assert_same_h5(a, b) -> None:
    assert h5_differences(a, b) == []
