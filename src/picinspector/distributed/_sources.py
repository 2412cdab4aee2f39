"""Inputs of a distributed run: folders, globs, manifests, ``s3://``-style URIs, and reading their bytes.

Local paths go through `picinspector.batch.iter_inputs` (the same expansion as a local batch) and
`picinspector.io.read_file_bytes` (the same typed errors as the local loader). URIs (``s3://``,
``gs://``, ``abfs://``, ``hdfs://``, ``file://``, ...) go through pyarrow's filesystems, which take
their credentials and endpoints from the usual places (for S3: ``AWS_*`` environment variables,
``~/.aws``, instance roles; ``AWS_ENDPOINT_URL`` for MinIO and other S3-compatible stores).
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from ..errors import EmptyFile, FileNotFound, UnreadableFile

__all__ = ["MANIFEST_SUFFIXES", "PATH_COLUMNS", "expand_inputs", "is_uri", "path_key", "read_manifest",
           "read_source"]

#: Manifest files by (lower-case) suffix: a table with one path or URI per row.
MANIFEST_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

#: Column names taken as the path column of a manifest (case-insensitive), in order of preference.
PATH_COLUMNS = ("path", "uri", "url", "image", "file")

# A scheme of two or more letters, so that a Windows drive ("C:\\...") is never taken for a URI.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
_GLOB_CHARS = frozenset("*?[")


def is_uri(text: str) -> bool:
    """True for ``scheme://...`` (``s3://bucket/key``, ``file:///abs/path``)."""
    return bool(_URI.match(text))


def path_key(path: str) -> str:
    """What resume compares: a URI as it is; a local path absolute, normalised, case-folded where the
    OS is (as the local batch does)."""
    return path if is_uri(path) else os.path.normcase(os.path.abspath(path))


# --------------------------------------------------------------------------------------------------
# Filesystems for URIs


_FILESYSTEMS: dict[str, Any] = {}
_FS_LOCK = threading.Lock()


def _split_uri(uri: str) -> tuple[Any, str, str, str]:
    """``(filesystem, path in it, prefix, query)`` such that ``prefix + path + query`` is the URI again.

    Filesystems are cached per prefix and query (creating an S3 client is not free).
    """
    import pyarrow.fs as pafs

    parts = urlsplit(uri)
    query = f"?{parts.query}" if parts.query else ""
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise ValueError(f"{uri}: cannot open this URI ({exc})") from None
    bare = uri[: len(uri) - len(query)] if query else uri
    prefix = bare[: len(bare) - len(path)] if bare.endswith(path) else f"{parts.scheme}://"
    with _FS_LOCK:
        fs = _FILESYSTEMS.setdefault(prefix + query, fs)
    return fs, path, prefix, query


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``**`` any run of characters, ``*`` and ``?`` within one segment."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                out.append(fnmatch.translate(pattern[i:end + 1])[4:-3])  # the class, as fnmatch reads it
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _is_image_name(name: str) -> bool:
    from ..io import SUPPORTED_EXTENSIONS

    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in SUPPORTED_EXTENSIONS


def _hidden(path: str, base: str) -> bool:
    rel = path[len(base):].strip("/")
    return any(part.startswith(".") for part in rel.split("/"))


def _expand_uri(uri: str) -> list[str]:
    """A URI of a file (kept whatever it is, as a named file is locally), of a folder (its images,
    recursively, sorted, without hidden names), or with a glob in its path."""
    import pyarrow.fs as pafs

    fs, path, prefix, query = _split_uri(uri)
    if _GLOB_CHARS & set(path):
        cut = min(path.find(c) for c in _GLOB_CHARS if c in path)
        base = path[:cut].rsplit("/", 1)[0] if "/" in path[:cut] else ""
        regex = _glob_regex(path)
        infos = _list(fs, base, uri)
        return [prefix + i.path + query for i in infos
                if i.type == pafs.FileType.File and regex.match(i.path) and _is_image_name(i.path)]
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        infos = _list(fs, path, uri)
        return [prefix + i.path + query for i in infos
                if i.type == pafs.FileType.File and _is_image_name(i.path) and not _hidden(i.path, path)]
    return [uri]  # a file, or missing: a missing one becomes a not_found row, as locally


def _list(fs: Any, base: str, uri: str) -> list[Any]:
    import pyarrow.fs as pafs

    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise ValueError(f"{uri}: cannot list ({exc})") from None
    return sorted(infos, key=lambda i: i.path)


# --------------------------------------------------------------------------------------------------
# Manifests


def _is_manifest(arg: str) -> bool:
    suffix = os.path.splitext(urlsplit(arg).path if is_uri(arg) else arg)[1].lower()
    return suffix in MANIFEST_SUFFIXES and (is_uri(arg) or os.path.isfile(arg))


def _open_table(source: str, kind: str, column: str | None):
    """The manifest's path column as a list of text, and the name it has."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    def choose(names: list[str]) -> str:
        if column is not None:
            if column not in names:
                raise ValueError(f"manifest {source}: no column {column!r}; its columns are {names}")
            return column
        lower = {n.lower(): n for n in reversed(names)}
        for name in PATH_COLUMNS:
            if name in lower:
                return lower[name]
        raise ValueError(f"manifest {source}: no path column (one of {', '.join(PATH_COLUMNS)}); its columns are "
                         f"{names}; name the column with --manifest-column")

    if is_uri(source):
        fs, path, _, _ = _split_uri(source)
    else:
        fs, path = None, source
    try:
        if kind == "parquet":
            schema = pq.read_schema(path, filesystem=fs)
            name = choose(list(schema.names))
            values = pq.read_table(path, columns=[name], filesystem=fs).column(name)
        else:
            def read(types):
                stream = fs.open_input_stream(path) if fs is not None else path
                return pacsv.read_csv(stream, convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False))

            table = read(None)
            name = choose(list(table.column_names))
            if not pa.types.is_string(table.schema.field(name).type):  # e.g. numeric names: read as text
                table = read({name: pa.string()})
            values = table.column(name)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"manifest {source}: cannot read it as {kind.upper()} ({exc})") from None
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise ValueError(f"manifest {source}: column {name!r} holds {values.type}, not text paths")
    return values.to_pylist(), name


def read_manifest(source: str | os.PathLike[str], column: str | None = None) -> list[str]:
    """The paths or URIs listed in a CSV or Parquet manifest.

    Parameters
    ----------
    source : str or path-like
        A local file or a URI ending in ``.csv``, ``.parquet`` or ``.pq``.
    column : str, optional
        The column to read; by default the first of `PATH_COLUMNS` present (case-insensitive).

    Returns
    -------
    list of str
        In row order. A relative path is relative to the manifest's folder (as in PicInspector's
        dataset CSVs); URIs and absolute paths are kept as they are.

    Raises
    ------
    ValueError
        Unknown suffix, unreadable file, no such column, a column that is not text, or an empty or
        missing cell (naming the row).
    """
    source = os.fspath(source)
    suffix = os.path.splitext(urlsplit(source).path if is_uri(source) else source)[1].lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise ValueError(f"manifest {source}: expected a {', '.join(MANIFEST_SUFFIXES)} file")
    values, name = _open_table(source, MANIFEST_SUFFIXES[suffix], column)
    if is_uri(source):
        parts = urlsplit(source)
        folder = source[: len(source) - len(parts.query) - (1 if parts.query else 0)].rsplit("/", 1)[0] + "/"
    else:
        folder = os.path.dirname(source)
    out = []
    for row, value in enumerate(values, start=2 if suffix == ".csv" else 1):
        if value is None or not value.strip():
            where = f"line {row}" if suffix == ".csv" else f"row {row}"
            raise ValueError(f"manifest {source} {where}: empty {name!r}")
        if is_uri(value) or os.path.isabs(value):
            out.append(value)
        elif is_uri(folder):
            out.append(folder + value)
        else:
            out.append(os.path.join(folder, value))
    return out


def expand_inputs(args: Iterable[str | os.PathLike[str]], *, column: str | None = None) -> list[str]:
    """Expand command-line inputs into the paths and URIs to analyse.

    Parameters
    ----------
    args : iterable of str or path-like
        Files, folders and globs (expanded as `picinspector.batch.iter_inputs` does), manifests
        (``.csv``/``.parquet`` files, local or URIs, see `read_manifest`), and URIs of files,
        folders or globs (``s3://bucket/shoot/``, ``s3://bucket/**/*.jpg``).
    column : str, optional
        The path column of the manifests.

    Returns
    -------
    list of str
        Without duplicates (compared with `path_key`), in first-seen order.
    """
    from ..batch import iter_inputs

    out: list[str] = []
    seen: set[str] = set()
    for arg in args:
        arg = os.fspath(arg)
        if not isinstance(arg, str) or arg == "":
            raise ValueError(f"an input path is empty or not text: {arg!r}")
        if _is_manifest(arg):
            found: Iterable[str] = read_manifest(arg, column)
        elif is_uri(arg):
            found = _expand_uri(arg)
        else:
            found = iter_inputs([arg])
        for path in found:
            key = path_key(path)
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


# --------------------------------------------------------------------------------------------------
# Reading bytes


def _read_uri(uri: str) -> bytes:
    import pyarrow.fs as pafs

    try:
        fs, path, _, _ = _split_uri(uri)
    except ValueError as exc:
        raise UnreadableFile(str(exc).split(": ", 1)[-1], uri) from None
    try:
        with fs.open_input_stream(path) as stream:
            data = stream.read()
    except FileNotFoundError:
        raise FileNotFound("no such file", uri) from None
    except PermissionError:
        raise UnreadableFile("permission denied", uri) from None
    except OSError as exc:
        try:
            kind = fs.get_file_info(path).type
        except OSError:
            kind = None
        if kind == pafs.FileType.NotFound:
            raise FileNotFound("no such file", uri) from None
        if kind == pafs.FileType.Directory:
            raise UnreadableFile("is a directory, not an image file", uri) from None
        raise UnreadableFile(f"read error: {exc}", uri) from None
    if not data:
        raise EmptyFile("file is empty (0 bytes)", uri)
    return data


def read_source(path: str) -> bytes:
    """The bytes of a local file or a URI, with the loader's typed errors (``not_found``,
    ``unreadable``, ``empty``) naming it."""
    if is_uri(path):
        return _read_uri(path)
    from ..io import read_file_bytes

    return read_file_bytes(path)


def iter_chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
