"""CSV tables written fast: pyarrow's writer when no field needs quoting, else pandas."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv


def write_csv(frame: pd.DataFrame, path) -> None:
    """CSV without index; pyarrow's fast writer when no field needs quoting, else pandas.
    Booleans are written True/False either way (pandas' spelling)."""
    flags = frame.select_dtypes(bool).columns
    frame = frame.assign(**{c: np.where(frame[c], "True", "False") for c in flags})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    needs_quotes = any(
        pc.any(pc.match_substring_regex(column, r'[,"\r\n]')).as_py()
        for column in table.columns
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    )
    if needs_quotes:
        frame.to_csv(path, index=False)
        return
    options = pcsv.WriteOptions(quoting_style="none", include_header=False)
    with open(path, "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pcsv.write_csv(table, sink, write_options=options)

