"""Where pretrained weights come from: a local folder, the Hugging Face cache, or the Hub.

`resolve_weights` is what every deep model calls before ``from_pretrained``. It never lets a
missing file turn into minutes of network retries: the cache is asked with ``local_files_only``,
and the Hub only when downloading is allowed and the Hub answers a short connection probe. With
nothing found it raises `WeightsNotFound`, whose message lists the files needed and how to get them.

No torch here: resolving a path is cheap and testable without the deep extras.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

#: Seconds to wait for the Hub to accept a connection before calling it unreachable.
HUB_PROBE_TIMEOUT_S = 3.0

_TRUE = {"1", "true", "yes", "on"}


class WeightsNotFound(FileNotFoundError):
    """Pretrained weights are in none of the places looked at; the message says how to get them."""


@dataclass(frozen=True)
class ResolvedWeights:
    """A folder holding the files of a pretrained model, and where it was found."""

    path: Path
    source: str  # "local folder", "Hugging Face cache" or "Hugging Face Hub"
    name: str    # what the user asked for (a path or a Hub id)


def hub_offline() -> bool:
    """True when the user asked Hugging Face libraries not to use the network (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hub_reachable(endpoint: str | None = None, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hub accepts a TCP connection within ``timeout`` seconds (no request is sent)."""
    url = urlparse(endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname
    if not host:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _looks_like_path(name: str) -> bool:
    """A name meant as a folder, not a Hub id ("owner/name"): absolute, starting with "." or "~", or
    with more than one "/" or any backslash."""
    return os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name


def _missing(folder: Path, files: Sequence[str]) -> list[str]:
    """The required files absent from ``folder``; an entry "a|b" is satisfied by either."""
    return [f for f in files if not any((folder / alt).is_file() for alt in f.split("|"))]


def _how_to_get(name: str, what: str, files: Sequence[str], download_hint: str | None) -> str:
    wanted = ", ".join(f.replace("|", " or ") for f in files)
    repo = download_hint or name
    return (f"{what} needs a folder with {wanted}. On a machine with a network run "
            f"`hf download {repo}` (huggingface_hub's CLI; older versions: `huggingface-cli download {repo}`) "
            f"and copy ~/.cache/huggingface/hub to this machine, or `hf download {repo} --local-dir DIR` "
            f"and pass that folder instead of {name!r}.")


def resolve_weights(name: str | os.PathLike[str], *, what: str = "model", files: Sequence[str] = ("config.json",),
                    allow_download: bool = True, download_hint: str | None = None,
                    revision: str | None = None) -> ResolvedWeights:
    """Find the folder of pretrained weights ``name``: a local folder, else the Hugging Face cache,
    else the Hub.

    Parameters
    ----------
    name : str or path-like
        A folder (``./dinov2-small``, ``/models/x``, ``~/m``) or a Hub repository id
        (``facebook/dinov2-small``).
    what : str
        What the weights are, for messages ("DINOv2 backbone").
    files : sequence of str
        Files the folder must hold; ``"a|b"`` accepts either (e.g. ``model.safetensors|model.safetensors.index.json``).
    allow_download : bool
        Try the Hub when the cache misses (still skipped when ``HF_HUB_OFFLINE`` is set or the Hub does
        not accept a connection within `HUB_PROBE_TIMEOUT_S`).
    download_hint : str, optional
        The Hub id to suggest in the error message when ``name`` is a folder.
    revision : str, optional
        Hub revision (branch, tag or commit).

    Returns
    -------
    ResolvedWeights

    Raises
    ------
    WeightsNotFound
        Nothing usable found; the message names the places looked at, the files needed and the
        download command.
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    if path.is_dir():
        missing = _missing(path, files)
        if missing:
            raise WeightsNotFound(f"{what}: the folder {path} lacks {', '.join(m.replace('|', ' or ') for m in missing)}. "
                                  + _how_to_get(text, what, files, download_hint))
        return ResolvedWeights(path.resolve(), "local folder", text)
    if _looks_like_path(text) or os.path.exists(text):
        raise WeightsNotFound(f"{what}: {path} is not a folder. " + _how_to_get(text, what, files, download_hint))

    patterns = sorted({alt for f in files for alt in f.split("|")} | {"*.json", "*.safetensors", "*.txt",
                                                                       "*.model"})
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise WeightsNotFound(f"{what}: {text!r} is not a local folder, and huggingface_hub (pip install "
                              "huggingface_hub) is needed to look in the Hugging Face cache. "
                              + _how_to_get(text, what, files, download_hint)) from None

    looked = ["not a local folder"]
    try:
        cached = Path(snapshot_download(text, revision=revision, local_files_only=True, allow_patterns=patterns))
        if not _missing(cached, files):
            return ResolvedWeights(cached, "Hugging Face cache", text)
        looked.append(f"the cached copy in {cached} lacks {', '.join(_missing(cached, files))}")
    except Exception as exc:  # noqa: BLE001 - LocalEntryNotFoundError, HFValidationError, ...
        looked.append(f"not in the Hugging Face cache ({type(exc).__name__})")

    if not allow_download:
        looked.append("downloading not allowed")
    elif hub_offline():
        looked.append("HF_HUB_OFFLINE is set")
    elif not hub_reachable():
        looked.append(f"the Hub did not answer within {HUB_PROBE_TIMEOUT_S:g} s (offline?)")
    else:
        try:
            fetched = Path(snapshot_download(text, revision=revision, allow_patterns=patterns))
            if not _missing(fetched, files):
                return ResolvedWeights(fetched, "Hugging Face Hub", text)
            looked.append(f"the Hub copy lacks {', '.join(_missing(fetched, files))}")
        except Exception as exc:  # noqa: BLE001 - repository not found, gated, network errors
            looked.append(f"the Hub download failed ({type(exc).__name__}: {exc})")
    raise WeightsNotFound(f"{what} {text!r} not found: {'; '.join(looked)}. "
                          + _how_to_get(text, what, files, download_hint))
