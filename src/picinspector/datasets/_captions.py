"""Caption datasets: images paired with a reference description (and, where the format has one, a prompt).

Four formats, chosen by name in `CAPTION_FORMATS`:

``qinstruct``
    Q-Instruct / Q-Pathway JSON: a list of objects with ``image`` and either ``conversations`` (see
    ``llava``) or one description field (``text``, ``description``, ``caption`` or ``output``).
``llava``
    LLaVA instruction JSON: a list of ``{"id", "image", "conversations": [{"from", "value"}, ...]}``.
    Turns come from ``human``/``user`` and ``gpt``/``assistant`` (``system`` turns are ignored); every
    human turn followed by an answer gives one sample, its prompt without the ``<image>`` placeholder.
``csv``
    A CSV with an ``image`` column (or ``path``/``file``/``filename``), a ``description`` column (or
    ``caption``/``text``/``feedback``), an optional ``prompt`` column; other columns go to ``meta``.
``jsonl``
    One object per line, ``{"image", "description", "prompt"?, ...}``: what `write_captions` writes.

Image paths are resolved against the annotation file's folder (absolute paths are kept). Bad input raises
`DatasetError` naming the file, the entry or line, and what is wrong.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._base import DatasetError, cell, column_index, read_csv_table

__all__ = [
    "CAPTION_FORMATS", "CaptionSample", "detect_caption_format", "load_caption_csv", "load_caption_jsonl",
    "load_captions", "load_llava", "load_qinstruct", "write_captions",
]


@dataclass
class CaptionSample:
    """One image with a reference description.

    Attributes
    ----------
    image : str
        Image path: as written in the annotation file when absolute, else joined to that file's
        (absolute) folder. The file is not required to exist.
    description : str
        The reference text (the assistant's answer in a conversation).
    prompt : str or None
        The user turn when the format has one (``<image>`` placeholder removed), else None.
    meta : dict
        Everything else the entry carries (``id``, ``turn`` for multi-turn conversations, extra columns
        or keys, the scores a generated description was written from ...).
    """

    image: str
    description: str
    prompt: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


#: Speaker names of the two sides of a conversation (lower case); "system" turns are skipped.
_USER_ROLES = frozenset({"human", "user"})
_ASSISTANT_ROLES = frozenset({"gpt", "assistant"})
_SKIPPED_ROLES = frozenset({"system"})

#: Keys that hold the description in Q-Instruct / Q-Pathway entries without a conversation, in order.
_DESCRIPTION_KEYS = ("text", "description", "caption", "output")

#: The image placeholder of LLaVA-style prompts, with the line breaks around it.
_IMAGE_TOKEN = re.compile(r"\s*<image>\s*")

#: Keys `write_captions` reserves; ``meta`` may not use them.
_RESERVED = ("image", "description", "prompt")


# --------------------------------------------------------------------------------------------------
# Shared helpers


def _resolve(folder: Path, image: str) -> str:
    """``image`` if absolute, else joined to ``folder`` (already absolute) and normalised."""
    return image if os.path.isabs(image) else os.path.normpath(os.path.join(folder, image))


def _folder(path: Path) -> Path:
    return Path(os.path.abspath(path)).parent


def _text(value: Any, where: str, what: str) -> str:
    """A non-empty string field, stripped; DatasetError naming ``where`` otherwise."""
    if not isinstance(value, str):
        got = "missing" if value is None else f"a {type(value).__name__}, not text"
        raise DatasetError(f"{where}: {what} is {got}")
    value = value.strip()
    if not value:
        raise DatasetError(f"{where}: {what} is empty")
    return value


def _image(entry: dict[str, Any], where: str) -> str:
    if "image" not in entry:
        raise DatasetError(f"{where}: no 'image' field (keys: {', '.join(map(repr, entry)) or 'none'})")
    if isinstance(entry["image"], list):
        raise DatasetError(f"{where}: 'image' is a list; expected one image path per entry")
    return _text(entry["image"], where, "'image'")


def _read_json_list(path: Path) -> list[Any]:
    """The top-level list of a JSON file; DatasetError naming the file otherwise."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of entries, found a {type(data).__name__}")
    return data


def _entries(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """``(where, entry)`` for each entry of a JSON list file, refusing entries that are not objects."""
    for i, entry in enumerate(_read_json_list(path)):
        where = f"{path} entry {i}"
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: expected an object, found a {type(entry).__name__}")
        yield where, entry


def conversation_pairs(turns: Any, where: str) -> list[tuple[str | None, str]]:
    """The (prompt, answer) pairs of a conversation, one per user turn followed by an answer.

    Parameters
    ----------
    turns : list of dict
        ``[{"from": "human"|"user"|"gpt"|"assistant"|"system", "value": str}, ...]``.
    where : str
        The file and entry, for error messages.

    Returns
    -------
    list of (str or None, str)
        The prompt has its ``<image>`` placeholder removed (None when nothing else is left).

    Raises
    ------
    DatasetError
        Not a list of turns, an unknown speaker, a turn without text, two turns of one side in a
        row, an answer before any question, or a question left unanswered.
    """
    if not isinstance(turns, list) or not turns:
        raise DatasetError(f"{where}: 'conversations' must be a non-empty list of turns")
    pairs: list[tuple[str | None, str]] = []
    prompt: str | None = None
    asked = False
    for k, turn in enumerate(turns):
        here = f"{where} turn {k}"
        if not isinstance(turn, dict):
            raise DatasetError(f"{here}: expected an object with 'from' and 'value'")
        role = str(turn.get("from", "")).strip().lower()
        if role in _SKIPPED_ROLES:
            continue
        if role in _USER_ROLES:
            if asked:
                raise DatasetError(f"{here}: two '{role}' turns in a row (the previous one has no answer)")
            value = turn.get("value")
            if not isinstance(value, str):
                raise DatasetError(f"{here}: 'value' is {'missing' if value is None else 'not text'}")
            prompt = _IMAGE_TOKEN.sub(" ", value).strip() or None
            asked = True
        elif role in _ASSISTANT_ROLES:
            if not asked:
                raise DatasetError(f"{here}: an answer ('{role}') with no question before it")
            pairs.append((prompt, _text(turn.get("value"), here, "'value'")))
            asked = False
        else:
            raise DatasetError(f"{here}: unknown speaker 'from': {turn.get('from')!r}; expected one of "
                               f"{', '.join(sorted(_USER_ROLES | _ASSISTANT_ROLES | _SKIPPED_ROLES))}")
    if asked:
        raise DatasetError(f"{where}: the last question has no answer")
    return pairs


def _conversation_samples(folder: Path, where: str, entry: dict[str, Any]) -> list[CaptionSample]:
    """One sample per question-answer pair of an entry with ``conversations``."""
    image = _resolve(folder, _image(entry, where))
    pairs = conversation_pairs(entry["conversations"], where)
    rest = {k: v for k, v in entry.items() if k not in ("image", "conversations")}
    return [CaptionSample(image, answer, prompt, {**rest, "turn": k} if len(pairs) > 1 else dict(rest))
            for k, (prompt, answer) in enumerate(pairs)]


# --------------------------------------------------------------------------------------------------
# Loaders


def load_qinstruct(path: str | os.PathLike[str]) -> list[CaptionSample]:
    """Read Q-Instruct / Q-Pathway style JSON.

    Parameters
    ----------
    path : str or path-like
        A JSON list of entries, each with ``image`` and either ``conversations`` (handled as in
        `load_llava`) or a description in ``text``, ``description``, ``caption`` or ``output`` (the
        first present is used; ``prompt``, ``question`` or ``instruction`` become the prompt).

    Returns
    -------
    list of CaptionSample
        In file order, one per question-answer pair or description.

    Raises
    ------
    DatasetError
        Not a JSON list, an entry without an image or without any description, a malformed conversation.

    References
    ----------
    H. Wu et al., "Q-Instruct: Improving Low-level Visual Abilities for Multi-modality Foundation
    Models", CVPR 2024. arXiv:2311.06783
    """
    path = Path(path)
    folder = _folder(path)
    out: list[CaptionSample] = []
    for where, entry in _entries(path):
        if "conversations" in entry:
            out.extend(_conversation_samples(folder, where, entry))
            continue
        key = next((k for k in _DESCRIPTION_KEYS if k in entry), None)
        if key is None:
            raise DatasetError(f"{where}: no 'conversations' nor a description field "
                               f"({', '.join(map(repr, _DESCRIPTION_KEYS))})")
        image = _resolve(folder, _image(entry, where))
        prompt_key = next((k for k in ("prompt", "question", "instruction") if k in entry), None)
        prompt = None
        if prompt_key is not None and entry[prompt_key] is not None:
            prompt = _IMAGE_TOKEN.sub(" ", _text(entry[prompt_key], where, repr(prompt_key))).strip() or None
        meta = {k: v for k, v in entry.items() if k not in ("image", key, prompt_key)}
        out.append(CaptionSample(image, _text(entry[key], where, repr(key)), prompt, meta))
    return out


def load_llava(path: str | os.PathLike[str]) -> list[CaptionSample]:
    """Read LLaVA-style instruction JSON.

    Parameters
    ----------
    path : str or path-like
        A JSON list of ``{"id", "image", "conversations": [{"from", "value"}, ...]}``.

    Returns
    -------
    list of CaptionSample
        One per human turn followed by an answer, in file order. ``meta`` holds ``id`` (and any other
        key of the entry), plus ``turn`` (0, 1, ...) when an entry has several pairs.

    Raises
    ------
    DatasetError
        Not a JSON list, an entry without ``image`` or ``conversations`` (text-only entries of mixed
        instruction sets included), a malformed conversation (see `conversation_pairs`).

    References
    ----------
    H. Liu, C. Li, Q. Wu and Y. J. Lee, "Visual Instruction Tuning", NeurIPS 2023. arXiv:2304.08485
    """
    path = Path(path)
    folder = _folder(path)
    out: list[CaptionSample] = []
    for where, entry in _entries(path):
        if "conversations" not in entry:
            raise DatasetError(f"{where}: no 'conversations' field")
        out.extend(_conversation_samples(folder, where, entry))
    return out


def load_caption_csv(path: str | os.PathLike[str]) -> list[CaptionSample]:
    """Read a CSV of images and descriptions.

    Parameters
    ----------
    path : str or path-like
        Header with ``image`` (aliases ``path``, ``file``, ``filename``) and ``description`` (aliases
        ``caption``, ``text``, ``feedback``), optionally ``prompt``; header names ignore case.

    Returns
    -------
    list of CaptionSample
        In file order; other non-blank cells go to ``meta`` as text under their header.

    Raises
    ------
    DatasetError
        A missing column, or a row with an empty image or description cell (naming the row).
    """
    path = Path(path)
    folder = _folder(path)
    header, rows = read_csv_table(path)
    cols = column_index(header, path,
                        {"image": ("image", "path", "file", "filename"),
                         "description": ("description", "caption", "text", "feedback")},
                        {"prompt": ("prompt",)})
    used = set(cols.values())
    extra = [(i, str(h).strip()) for i, h in enumerate(header) if i not in used and str(h).strip()]
    out = []
    for line, row in enumerate(rows, start=2):
        image, text = cell(row, cols["image"]), cell(row, cols["description"])
        if image is None:
            raise DatasetError(f"{path} row {line}: the image cell is empty")
        if text is None:
            raise DatasetError(f"{path} row {line}: the description cell is empty")
        meta = {name: value for i, name in extra if (value := cell(row, i)) is not None}
        out.append(CaptionSample(_resolve(folder, image), text, cell(row, cols.get("prompt")), meta))
    return out


def load_caption_jsonl(path: str | os.PathLike[str]) -> list[CaptionSample]:
    """Read JSON Lines of ``{"image", "description", "prompt"?, ...}`` (the `write_captions` format).

    Parameters
    ----------
    path : str or path-like
        UTF-8; blank lines are skipped.

    Returns
    -------
    list of CaptionSample
        In file order; keys other than image, description and prompt go to ``meta``.

    Raises
    ------
    DatasetError
        A line that is not a JSON object, or lacks ``image`` or ``description`` (naming the line).
    """
    path = Path(path)
    folder = _folder(path)
    out = []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(entry, dict):
                    raise DatasetError(f"{where}: expected a JSON object, found a {type(entry).__name__}")
                image = _image(entry, where)
                text = _text(entry.get("description"), where, "'description'")
                prompt = entry.get("prompt")
                if prompt is not None and not isinstance(prompt, str):
                    raise DatasetError(f"{where}: 'prompt' is a {type(prompt).__name__}, not text")
                meta = {k: v for k, v in entry.items() if k not in _RESERVED}
                out.append(CaptionSample(_resolve(folder, image), text, prompt, meta))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return out


#: Caption loaders by format name.
CAPTION_FORMATS: dict[str, Callable[[str | os.PathLike[str]], list[CaptionSample]]] = {
    "qinstruct": load_qinstruct, "llava": load_llava, "csv": load_caption_csv, "jsonl": load_caption_jsonl,
}

#: Annotation file suffixes that `load_captions` accepts inside a folder.
_SUFFIXES = (".json", ".jsonl", ".csv")


def _annotation_file(path: Path) -> Path:
    """``path`` itself, or the one annotation file of a folder."""
    if not path.exists():
        raise DatasetError(f"caption file {path} does not exist")
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES)
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise DatasetError(f"{path}: expected exactly one .json, .jsonl or .csv caption file, found {listed}; "
                           "pass the file itself")
    return found[0]


def detect_caption_format(path: str | os.PathLike[str]) -> str:
    """The caption format of a file, from its suffix and (for .json) its entries.

    Parameters
    ----------
    path : str or path-like
        An annotation file, or a folder holding exactly one .json/.jsonl/.csv file.

    Returns
    -------
    str
        "jsonl" for .jsonl, "csv" for .csv; for .json, "llava" when every entry has ``id`` and
        ``conversations``, else "qinstruct" (which also reads conversations). Both give the same
        samples for a file either can read.

    Raises
    ------
    DatasetError
        The path does not exist, or its suffix is none of .json, .jsonl, .csv.
    """
    path = _annotation_file(Path(path))
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        entries = _read_json_list(path)
        llava = bool(entries) and all(isinstance(e, dict) and "id" in e and "conversations" in e for e in entries)
        return "llava" if llava else "qinstruct"
    raise DatasetError(f"{path}: cannot tell the caption format from the suffix {suffix or '(none)'!r}; "
                       f"expected .json (qinstruct, llava), .jsonl or .csv, or name the format")


def load_captions(path: str | os.PathLike[str], format: str | None = None) -> list[CaptionSample]:
    """Load a caption dataset by format name, or by `detect_caption_format` when ``format`` is None.

    Parameters
    ----------
    path : str or path-like
        An annotation file, or a folder holding exactly one.
    format : str, optional
        A key of `CAPTION_FORMATS`.

    Returns
    -------
    list of CaptionSample

    Raises
    ------
    ValueError
        Unknown format name.
    DatasetError
        See the loaders.
    """
    if format is not None and format not in CAPTION_FORMATS:
        raise ValueError(f"unknown caption format {format!r}; choose from {', '.join(CAPTION_FORMATS)}")
    file = _annotation_file(Path(path))
    return CAPTION_FORMATS[format or detect_caption_format(file)](file)


def write_captions(samples: Iterable[CaptionSample], path: str | os.PathLike[str]) -> int:
    """Write captions as JSON Lines (UTF-8), readable by `load_caption_jsonl`.

    Parameters
    ----------
    samples : iterable of CaptionSample
    path : str or path-like
        Created or replaced, with its folder.

    Returns
    -------
    int
        The number of lines written.

    Raises
    ------
    ValueError
        A ``meta`` key that clashes with image, description or prompt, or a value that is not JSON.

    Notes
    -----
    Each line is ``{"image", "description", "prompt"?, **meta}``: ``prompt`` only when it is not None,
    ``meta`` keys at the top level. Images are written relative to the output's folder (absolute when
    that is impossible, e.g. another drive), so that reading the file back gives the same paths.
    """
    path = Path(path)
    folder = _folder(path)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, sample in enumerate(samples):
        clash = [k for k in _RESERVED if k in sample.meta]
        if clash:
            raise ValueError(f"caption {i} ({sample.image}): meta uses the reserved key(s) {', '.join(clash)}")
        image = os.path.abspath(sample.image)
        try:
            image = os.path.relpath(image, folder)
        except ValueError:  # another drive (Windows): keep it absolute
            pass
        row = {"image": image, "description": sample.description}
        if sample.prompt is not None:
            row["prompt"] = sample.prompt
        row.update(sample.meta)
        try:
            lines.append(json.dumps(row, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"caption {i} ({sample.image}): cannot be written as JSON ({exc})") from None
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)
    return len(lines)
