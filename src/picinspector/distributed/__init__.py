"""The same analysis on a Ray cluster: ``picinspector analyze INPUT --ray -o OUT``.

- `expand_inputs`: folders, globs, CSV/Parquet manifests and ``s3://``-style URIs (pyarrow's
  filesystems) into the list of photos.
- `run_ray`: a Ray Data pipeline (read the bytes, analyse in a pool of actors that each hold one
  `picinspector.Inspector`) whose rows the driver commits to a folder of Parquet parts or a JSON-lines
  file; rerunning resumes by path.
- `read_results`: the rows back, as the dicts the local batch writes.

Ray and pyarrow are imported only when a run starts (``pip install "picinspector[ray]"``); this
package imports without them. See docs/ray.md.
"""

from ._ray import BATCH_SIZE, Analyser, RaySummary, analyse_bytes, run_ray
from ._schema import SCHEMA_KEY, SCHEMA_VERSION, SchemaMismatch, fit_row, rows_to_table, schema, table_to_rows
from ._sources import MANIFEST_SUFFIXES, PATH_COLUMNS, expand_inputs, is_uri, path_key, read_manifest, read_source
from ._store import JsonlStore, OutputLocked, ParquetStore, open_store, read_results

__all__ = [
    "Analyser", "BATCH_SIZE", "JsonlStore", "MANIFEST_SUFFIXES", "OutputLocked", "PATH_COLUMNS", "ParquetStore",
    "RaySummary", "SCHEMA_KEY", "SCHEMA_VERSION", "SchemaMismatch", "analyse_bytes", "expand_inputs", "fit_row",
    "is_uri", "open_store", "path_key", "read_manifest", "read_results", "read_source", "rows_to_table", "run_ray",
    "schema", "table_to_rows",
]


def ray_available() -> str | None:
    """None when ``ray.data`` and pyarrow import; else the reason, with the install command."""
    try:
        import pyarrow  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        return f'{exc}; install the Ray extra: pip install "picinspector[ray]"'
    return None
