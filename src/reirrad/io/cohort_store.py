"""Parquet tables of a cohort run: one file per patient per table, written atomically.

Layout under the output folder ``OUT``:

* ``OUT/parts/<table>/<patient>.parquet``: one patient's rows of one table, written to a
  temporary file in the same folder and moved into place with :func:`os.replace` (atomic on
  POSIX and Windows file systems), so a killed process leaves either the old file, the new
  file or a stray ``.tmp-*`` file, never a half-written ``.parquet``;
* ``OUT/<table>.parquet``: every patient's rows of a table in one file, written (atomically
  too) by :func:`compact` at the end of a run; readable by pandas, polars, duckdb and
  pyarrow.

Column types are given as names (``string``, ``category``, ``float64``, ``float32``,
``int64``, ``bool``)
so that every patient's file of a table has the same schema, even where a column is empty.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "compact",
    "part_path",
    "read_parts",
    "read_table",
    "remove_parts",
    "remove_stale_temporaries",
    "write_part",
]

PARTS = "parts"
_TMP = ".tmp-"


def _arrow_schema(columns: Mapping[str, str]):
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "float64": pa.float64(),
        "float32": pa.float32(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        # repeated labels (the dvh table's 10^5 rows per patient): stored and read back as
        # dictionary codes, several times faster than plain strings; pandas gets Categorical
        "category": pa.dictionary(pa.int32(), pa.string()),
    }
    return pa.schema([(name, types[kind]) for name, kind in columns.items()])


def _parts(folder: Path) -> list[Path]:
    """The stored parts in a folder (never a temporary file), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(_TMP))


def part_path(out: str | Path, table: str, patient: str) -> Path:
    """Where one patient's rows of ``table`` are stored."""
    return Path(out) / PARTS / table / f"{patient}.parquet"


def _write_atomic(table, path: Path) -> None:
    """Write a pyarrow table to ``path`` through a temporary file in the same folder."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{_TMP}{uuid.uuid4().hex}-{path.stem}")  # no .parquet suffix
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # failed before the rename
            tmp.unlink()


def write_part(
    out: str | Path,
    table: str,
    patient: str,
    rows: Sequence[Mapping[str, object]] | Mapping[str, Sequence],
    columns: Mapping[str, str],
) -> Path:
    """Write one patient's rows (a list of row mappings, or a mapping of columns)."""
    import pyarrow as pa

    schema = _arrow_schema(columns)
    if isinstance(rows, Mapping):
        data = pa.Table.from_pydict({name: rows[name] for name in columns}, schema=schema)
    else:
        data = pa.Table.from_pylist([dict(r) for r in rows], schema=schema)
    path = part_path(out, table, patient)
    _write_atomic(data, path)
    return path


def remove_parts(out: str | Path, tables: Iterable[str], patient: str) -> None:
    """Delete a patient's stored rows of ``tables`` (before recording a failure)."""
    for table in tables:
        part_path(out, table, patient).unlink(missing_ok=True)


def read_parts(out: str | Path, table: str, columns: Mapping[str, str]) -> list[dict]:
    """Every stored patient row of ``table`` (parts, not the compacted file), as dicts."""
    import pyarrow.parquet as pq

    folder = Path(out) / PARTS / table
    rows: list[dict] = []
    for path in _parts(folder):
        rows += pq.read_table(path, schema=_arrow_schema(columns)).to_pylist()
    return rows


def remove_stale_temporaries(out: str | Path) -> int:
    """Delete temporary files left by an interrupted write; return how many."""
    count = 0
    for path in Path(out).rglob(f"{_TMP}*"):
        path.unlink(missing_ok=True)
        count += 1
    return count


def _compacted_is_current(path: Path, folder: Path) -> bool:
    """The compacted file was written after the last change to the parts folder.

    Adding, replacing (``os.replace``) or deleting a part changes the folder's mtime.
    """
    try:
        return path.stat().st_mtime_ns > folder.stat().st_mtime_ns
    except FileNotFoundError:
        return False


#: Rows per row group of a compacted table: parts are gathered up to this size, then written,
#: so compaction needs memory for about one row group, whatever the cohort's size.
ROW_GROUP_ROWS = 1_000_000


def _write_dataset(parts: list[Path], schema, tmp: Path) -> None:
    """Stream every part into one file through :mod:`pyarrow.dataset`.

    One dataset scan over all parts reads them on pyarrow's own threads (about 0.5 s for the
    40-patient synthetic cohort's 11 tables, against 1.1 s read file by file); batches are
    gathered to about ``ROW_GROUP_ROWS`` rows before each write, so memory stays near one
    row group whatever the cohort's size.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        if not parts:  # no part at all: a file with the schema and no row
            writer.write_table(schema.empty_table())
            return
        scan = ds.dataset([str(p) for p in parts], schema=schema, format="parquet")
        batch: list = []
        rows = 0
        for record in scan.to_batches():
            batch.append(record)
            rows += record.num_rows
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(batch, schema), row_group_size=rows)
                batch, rows = [], 0
        if batch:
            writer.write_table(pa.Table.from_batches(batch, schema), row_group_size=max(rows, 1))


def _compact_one(out: Path, table: str, columns: Mapping[str, str], force: bool) -> Path:
    schema = _arrow_schema(columns)
    folder = out / PARTS / table
    path = out / f"{table}.parquet"
    if not force and _compacted_is_current(path, folder):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{_TMP}{uuid.uuid4().hex}-{path.stem}")
    try:
        _write_dataset(_parts(folder), schema, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def compact(
    out: str | Path, tables: Mapping[str, Mapping[str, str]], *, force: bool = False
) -> dict[str, Path]:
    """Write ``OUT/<table>.parquet`` from every patient's part of each table.

    A table whose compacted file is newer than every change to its parts is left as it is
    (unless ``force``); tables are compacted in parallel threads (pyarrow releases the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    out = Path(out)
    with ThreadPoolExecutor(max_workers=min(4, len(tables) or 1)) as pool:
        futures = {
            table: pool.submit(_compact_one, out, table, columns, force)
            for table, columns in tables.items()
        }
        written = {table: future.result() for table, future in futures.items()}
    remove_stale_temporaries(out)
    return written


def read_table(out: str | Path, table: str):
    """A compacted table as a pandas DataFrame."""
    import pandas as pd

    path = Path(out) / f"{table}.parquet"
    if not path.is_file():
        from reirrad.errors import InputError

        raise InputError(
            f"no {table}.parquet here; run `reirrad cohort run MANIFEST --out DIR` first",
            source=str(out),
        )
    return pd.read_parquet(path)
