"""Written feedback from a small vision-language model: SmolVLM (Idefics3) with an optional LoRA adapter.

Three kinds of folder load with `load_vlm`:

* a **run folder** made by `picinspector.training.lora.train_vlm`: a peft LoRA adapter
  (``adapter_model.safetensors`` + ``adapter_config.json``), the processor (tokenizer, image
  processor, chat template) and our own `SETTINGS_FILE` (the base model, the instruction, the
  image size, the generation settings and the training metrics). The base weights are found with
  `~picinspector.models.resolve_weights` (local folder, Hugging Face cache, Hub);
* a **merged export** (`picinspector.training.lora.merge_vlm`): a plain model folder with
  `SETTINGS_FILE` beside it;
* a **base model** (a folder or a Hub id such as `DEFAULT_BASE`), used as it is.

Weights are only ever read from safetensors (``use_safetensors=True``) and from local files
(``local_files_only=True`` once the folder is resolved): nothing is unpickled, nothing hangs on the
network.

Prompts follow the SmolVLM chat format, ``<|im_start|>User:<image>INSTRUCTION<end_of_utterance>\\n
Assistant:``, taken from the processor's chat template when it has one. With *grounding*
(`build_prompt`), the measured scores, the scene and the rule findings go into the instruction so
that the model phrases what was measured instead of guessing.

torch, transformers and peft are imported inside the functions that use them: importing this module
(or ``picinspector``) stays light.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..report import SCORE_NAMES, Finding, SceneResult
from ._weights import WeightsNotFound, resolve_weights

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from ..io import Photo

# peft 0.21 asks transformers 5 for a deprecated attribute on every adapter load; nothing to act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

#: The base model `train_vlm` starts from when none is named.
DEFAULT_BASE = "HuggingFaceTB/SmolVLM-256M-Instruct"

#: Our settings file in run folders and merged exports.
SETTINGS_FILE = "picinspector_vlm.json"
SETTINGS_FORMAT = "picinspector-vlm"
SETTINGS_VERSION = 1

#: Files a base model folder must hold ("a|b": either).
BASE_FILES = ("config.json", "model.safetensors|model.safetensors.index.json",
              "tokenizer.json|tokenizer_config.json", "processor_config.json|preprocessor_config.json")

#: peft's adapter files in a run folder.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

#: What the model is asked, without grounding.
INSTRUCTION = ("Describe the technical quality of this photo in two or three sentences: sharpness, noise, "
               "exposure, contrast and colour.")

#: Greedy decoding: the same photo always gets the same paragraph.
GENERATION = {"max_new_tokens": 96, "do_sample": False, "num_beams": 1, "repetition_penalty": 1.0}

#: Used when the processor has no chat template (SmolVLM's own format).
FALLBACK_TEMPLATE = "<|im_start|>User:<image>{instruction}<end_of_utterance>\nAssistant:"

#: Keys a grounding dict may hold.
GROUNDING_KEYS = ("scores", "scene", "findings")


# --------------------------------------------------------------------------------------------------
# Prompts


def build_prompt(grounding: Mapping[str, Any] | None = None, instruction: str | None = None) -> str:
    """The instruction for the model, with the measured facts when ``grounding`` is given.

    Parameters
    ----------
    grounding : mapping, optional
        ``{"scores": {name: 0-100}, "scene": label, "findings": [message, ...]}``; every key is
        optional. Scores are the six of `picinspector.report.SCORE_NAMES`; findings may be
        `~picinspector.report.Finding` objects or their messages. See `grounding_from`.
    instruction : str, optional
        What to ask (default `INSTRUCTION`).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Unknown grounding keys or score names, or a score that is not a number in [0, 100].
    """
    text = (instruction or INSTRUCTION).strip()
    if not grounding:
        return text
    unknown = set(grounding) - set(GROUNDING_KEYS)
    if unknown:
        raise ValueError(f"unknown grounding keys {sorted(unknown)}; use {list(GROUNDING_KEYS)}")
    lines = [text]
    scores = dict(grounding.get("scores") or {})
    bad = set(scores) - set(SCORE_NAMES)
    if bad:
        raise ValueError(f"unknown score names {sorted(bad)}; use {list(SCORE_NAMES)}")
    if scores:
        parts = []
        for name in SCORE_NAMES:
            if name not in scores:
                continue
            value = scores[name]
            if not isinstance(value, (int, float, np.number)) or not 0.0 <= float(value) <= 100.0:
                raise ValueError(f"score {name!r} must be a number in [0, 100], got {value!r}")
            parts.append(f"{name} {float(value):.0f}")
        lines.append("Measured scores (0-100, higher is better): " + ", ".join(parts) + ".")
    scene = grounding.get("scene")
    if scene:
        lines.append(f"Scene: {scene}.")
    if "findings" in grounding:
        messages = [f.message if isinstance(f, Finding) else str(f) for f in grounding["findings"] or ()]
        lines.append("Findings: " + ("; ".join(m.rstrip(".") for m in messages) if messages else "none") + ".")
    lines.append("Say what was measured; do not contradict it.")
    return "\n".join(lines)


def grounding_from(scores: Mapping[str, float], scene: SceneResult | str | None = None,
                   findings: Sequence[Finding | str] = ()) -> dict[str, Any]:
    """A grounding dict (see `build_prompt`) from what the pipeline measured.

    Problems only: ``info`` findings (e.g. "Black-and-white image") are kept, as they are facts too.
    """
    label = scene.label if isinstance(scene, SceneResult) else scene
    return {"scores": {k: round(float(scores[k]), 1) for k in SCORE_NAMES if k in scores},
            "scene": label,
            "findings": [f.message if isinstance(f, Finding) else str(f) for f in findings]}


def chat_prompt(processor: Any, instruction: str) -> str:
    """The full prompt text (one ``<image>`` placeholder) in the processor's chat format."""
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return FALLBACK_TEMPLATE.format(instruction=instruction)


def end_token(tokenizer: Any) -> str:
    """The token that ends an answer: ``<end_of_utterance>`` for SmolVLM, else the EOS token."""
    eou = "<end_of_utterance>"
    if eou in tokenizer.get_vocab():
        return eou
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has neither <end_of_utterance> nor an EOS token to end answers with")
    return tokenizer.eos_token


# --------------------------------------------------------------------------------------------------
# Images


def tile_size(processor: Any) -> int:
    """The vision encoder's tile (the image processor's ``max_image_size["longest_edge"]``)."""
    size = getattr(processor.image_processor, "max_image_size", None) or {}
    if "longest_edge" not in size:
        raise ValueError("the image processor has no max_image_size['longest_edge']; is this an Idefics3 model?")
    return int(size["longest_edge"])


def to_pil(image: Any) -> Image.Image:
    """An RGB Pillow image from a `~picinspector.io.Photo`, an array, a Pillow image or a path.

    Paths go through `picinspector.io.load_photo` (EXIF orientation, HEIC, RAW, colour
    management), so training and inference see photos prepared the same way; arrays may be uint8
    or float in [0, 1] (the ``Photo.rgb`` convention).
    """
    from PIL import Image

    from ..io import Photo, load_photo

    if isinstance(image, (str, os.PathLike)):
        image = load_photo(image)
    if isinstance(image, Photo):
        image = image.rgb
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    array = array[..., :3]
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"image arrays must be uint8 or float in [0, 1], got {array.dtype}")
        array = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def encode_prompt(processor: Any, image: Any, instruction: str, image_size: int) -> Any:
    """Model inputs (``input_ids``, ``attention_mask``, ``pixel_values``, ``pixel_attention_mask``)
    for one image and one instruction, as a batch of one.

    ``image_size`` is the longest edge the photo is resized to. Up to the processor's tile
    (`tile_size`) the photo is one tile; above, Idefics3 splits it into tiles plus a global view
    (``image_seq_len`` image tokens each).
    """
    return processor(images=[[to_pil(image)]], text=[chat_prompt(processor, instruction)], return_tensors="pt",
                     size={"longest_edge": int(image_size)})


# --------------------------------------------------------------------------------------------------
# Settings


def default_settings(processor: Any | None = None, base: str | None = None) -> dict[str, Any]:
    """Settings for a model that was not trained here (a plain base folder or Hub id)."""
    return {"format": SETTINGS_FORMAT, "format_version": SETTINGS_VERSION, "base": base,
            "instruction": INSTRUCTION, "grounded": False,
            "image_size": tile_size(processor) if processor is not None else None,
            "generation": dict(GENERATION), "merged": False}


def read_settings(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """`SETTINGS_FILE` of ``folder``, or None when there is none.

    Raises
    ------
    ValueError
        The file is not ours or is from a newer format version.
    """
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return None
    settings = json.loads(path.read_text(encoding="utf-8"))
    if settings.get("format") != SETTINGS_FORMAT:
        raise ValueError(f"{path} is not a PicInspector VLM settings file (format {settings.get('format')!r})")
    if int(settings.get("format_version", 0)) > SETTINGS_VERSION:
        raise ValueError(f"{path} has format version {settings['format_version']}; this PicInspector reads up to "
                         f"{SETTINGS_VERSION}: upgrade picinspector")
    return settings


def write_settings(folder: str | os.PathLike[str], settings: Mapping[str, Any]) -> Path:
    """Write `SETTINGS_FILE` into ``folder`` (atomically) and return its path."""
    path = Path(folder) / SETTINGS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(settings), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def is_run_dir(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a LoRA adapter (a training run), not a full model."""
    path = Path(folder).expanduser()
    return all((path / f).is_file() for f in ADAPTER_FILES)


# --------------------------------------------------------------------------------------------------
# Loading and generating


def resolve_dtype(dtype: Any, device: str) -> Any:
    """torch dtype from None / a name / a dtype: None means float32 on CPU, bfloat16 on CUDA (when
    supported, else float16)."""
    import torch

    if dtype is None:
        if str(device).startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16}
        if dtype not in names:
            raise ValueError(f"unknown dtype {dtype!r}; choose from {sorted(names)}")
        return names[dtype]
    return dtype


def load_base(name: str | os.PathLike[str], *, device: str = "cpu", dtype: Any = None):
    """Resolve and load a base Idefics3 model and its processor.

    Returns
    -------
    model, processor, ResolvedWeights

    Raises
    ------
    picinspector.models.WeightsNotFound
        Not a folder with `BASE_FILES`, not in the Hugging Face cache, and not downloadable; the
        message says what to download.
    """
    from transformers import AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bars and messages say what happens
    resolved = resolve_weights(name, what="VLM base model", files=BASE_FILES, download_hint=DEFAULT_BASE
                               if _is_folder_name(name) else None)
    dtype_key = "dtype" if _transformers_major() >= 5 else "torch_dtype"
    model = AutoModelForImageTextToText.from_pretrained(resolved.path, local_files_only=True, use_safetensors=True,
                                                        **{dtype_key: resolve_dtype(dtype, device)})
    processor = load_processor(resolved.path)
    return model.to(device), processor, resolved


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def load_processor(folder: str | os.PathLike[str]) -> Any:
    """The Idefics3 processor saved in ``folder``, with the PIL image backend (the same pixels on every
    machine, with or without torchvision)."""
    from transformers import AutoProcessor

    backend = {"backend": "pil"} if _transformers_major() >= 5 else {"use_fast": False}
    return AutoProcessor.from_pretrained(folder, local_files_only=True, **backend)


def _is_folder_name(name: str | os.PathLike[str]) -> bool:
    text = os.fspath(name)
    return os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") != 1 or os.path.exists(text)


@dataclass
class VLM:
    """A loaded vision-language model, its processor and its `SETTINGS_FILE` settings.

    Attributes
    ----------
    model : transformers.Idefics3ForConditionalGeneration or peft.PeftModel
    processor : transformers.Idefics3Processor
    settings : dict
        ``instruction``, ``grounded``, ``image_size``, ``generation``, ``base``, ...
    source : str
        What was loaded ("run folder /x (adapter on base /y)", "merged model /x", "base model ...").
    device : str
    """

    model: Any
    processor: Any
    settings: dict[str, Any]
    source: str
    device: str = "cpu"
    end_token_id: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tokenizer = self.processor.tokenizer
        self.end_token_id = tokenizer.convert_tokens_to_ids(end_token(tokenizer))

    @property
    def image_size(self) -> int:
        return int(self.settings.get("image_size") or tile_size(self.processor))

    def prompt(self, grounding: Mapping[str, Any] | None = None, instruction: str | None = None) -> str:
        return build_prompt(grounding, instruction or self.settings.get("instruction") or INSTRUCTION)

    def inputs(self, image: Any, grounding: Mapping[str, Any] | None = None, instruction: str | None = None) -> Any:
        """Encoded model inputs for one image, on the model's device."""
        batch = encode_prompt(self.processor, image, self.prompt(grounding, instruction), self.image_size)
        return batch.to(self.device)

    def generate(self, image: Any, grounding: Mapping[str, Any] | None = None, *, instruction: str | None = None,
                 max_new_tokens: int | None = None) -> str:
        """The paragraph the model writes for ``image`` (greedy unless the settings say otherwise).

        Parameters
        ----------
        image : Photo, ndarray, PIL.Image.Image, str or path-like
            See `to_pil`.
        grounding : mapping, optional
            Measured facts for the prompt (`build_prompt`).
        instruction : str, optional
            Overrides the run's instruction.
        max_new_tokens : int, optional
            Overrides the run's ``generation["max_new_tokens"]``.
        """
        import torch

        options = {**GENERATION, **(self.settings.get("generation") or {})}
        if max_new_tokens is not None:
            options["max_new_tokens"] = int(max_new_tokens)
        if not options.get("do_sample"):
            options.pop("temperature", None)
            options.pop("top_p", None)
        pad = self.processor.tokenizer.pad_token_id
        batch = self.inputs(image, grounding, instruction)
        self.model.eval()
        with torch.inference_mode():
            out = self.model.generate(**batch, eos_token_id=self.end_token_id,
                                      pad_token_id=self.end_token_id if pad is None else pad, **options)
        new = out[0, batch["input_ids"].shape[1]:]
        return self.processor.tokenizer.decode(new, skip_special_tokens=True).strip()


def load_vlm(base_or_run_dir: str | os.PathLike[str], device: str = "cpu", dtype: Any = None) -> VLM:
    """Load a run folder (LoRA adapter on its base), a merged export, or a base model.

    Parameters
    ----------
    base_or_run_dir : str or path-like
        A folder made by `~picinspector.training.lora.train_vlm` or `merge_vlm`, a model folder,
        or a Hub id (``HuggingFaceTB/SmolVLM-256M-Instruct``; from the cache, or the Hub when
        online).
    device : str
        "cpu", "cuda", "cuda:1", "mps".
    dtype : torch.dtype or str, optional
        Default float32 on CPU, bfloat16 on CUDA.

    Returns
    -------
    VLM

    Raises
    ------
    picinspector.models.WeightsNotFound
        The base weights (of a run folder, or the model named) are nowhere to be found; the message
        says what to download and where to put it.
    ValueError
        A settings file that is not ours, or a run folder without settings and without a base.
    """
    path = Path(base_or_run_dir).expanduser()
    if path.is_dir() and is_run_dir(path):
        from peft import PeftModel

        settings = read_settings(path)
        if settings is None:
            adapter = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
            base = adapter.get("base_model_name_or_path")
            if not base:
                raise ValueError(f"{path}: a LoRA adapter without {SETTINGS_FILE} and without a base model name")
            settings = default_settings(None, base)
        try:
            model, base_processor, resolved = load_base(settings["base"], device=device, dtype=dtype)
        except WeightsNotFound as exc:
            raise WeightsNotFound(f"the run folder {path} is a LoRA adapter on the base model {settings['base']!r}, "
                                  f"which is needed too: {exc}") from None
        has_processor = any((path / f).is_file() for f in ("processor_config.json", "preprocessor_config.json"))
        processor = load_processor(path) if has_processor else base_processor
        model = PeftModel.from_pretrained(model, path, is_trainable=False, local_files_only=True).to(device)
        settings["image_size"] = settings.get("image_size") or tile_size(processor)
        return VLM(model, processor, settings, f"run folder {path} (adapter on {resolved.source} {resolved.path})",
                   str(device))
    settings = read_settings(path) if path.is_dir() else None
    model, processor, resolved = load_base(base_or_run_dir, device=device, dtype=dtype)
    if settings is None:
        settings = default_settings(processor, str(resolved.path) if resolved.source == "local folder"
                                    else resolved.name)
        kind = "base model"
    else:
        kind = "merged model" if settings.get("merged") else "model"
    settings["image_size"] = settings.get("image_size") or tile_size(processor)
    return VLM(model, processor, settings, f"{kind} {resolved.name} ({resolved.source})", str(device))


# --------------------------------------------------------------------------------------------------
# The feedback writer


class VLMFeedback:
    """A `~picinspector.pipeline.FeedbackWriter` whose paragraph a vision-language model writes.

    The findings are the grounded rule findings (`picinspector.feedback.rules`), unchanged; the
    paragraph is generated by the model from the photo (``photo.rgb``, resized to the run's image
    size). With ``grounded`` the measured scores, scene and findings are put into the prompt.

    Parameters
    ----------
    model_dir : str or path-like
        A run folder, merged export or base model (see `load_vlm`).
    grounded : bool or None
        Put the measured facts into the prompt. None: as the run was trained (its settings'
        ``grounded``); a model fine-tuned without grounding has never seen grounded prompts.
    max_new_tokens : int
        Length limit of the paragraph, in tokens.
    device : str
    dtype : torch.dtype or str, optional

    Notes
    -----
    The model is loaded when the writer is built, so a missing base fails at once, with
    `~picinspector.models.WeightsNotFound`. If the model writes nothing (it stopped at once),
    the rule paragraph is returned instead, so a report never has an empty feedback, and an
    ``info`` finding of kind ``vlm_no_text`` says so.
    """

    name = "vlm"

    @staticmethod
    def check(model_dir: str | os.PathLike[str], grounded: bool | None = True, max_new_tokens: int = 96,
              device: str = "cpu", dtype: Any = None) -> None:
        """Validate the options without loading the model (what a parent of worker processes does): the
        settings file is ours and the base weights resolve (downloading them once, when allowed, so
        that the workers find them in the cache)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        path = Path(model_dir).expanduser()
        settings = read_settings(path) if path.is_dir() else None
        if path.is_dir() and is_run_dir(path):
            base = (settings or {}).get("base") or json.loads(
                (path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
            if not base:
                raise ValueError(f"{path}: a LoRA adapter without {SETTINGS_FILE} and without a base model name")
            try:
                resolve_weights(base, what="VLM base model", files=BASE_FILES, download_hint=DEFAULT_BASE)
            except WeightsNotFound as exc:
                raise WeightsNotFound(f"the run folder {path} is a LoRA adapter on the base model {base!r}, which is "
                                      f"needed too: {exc}") from None
        else:
            resolve_weights(model_dir, what="VLM base model", files=BASE_FILES,
                            download_hint=DEFAULT_BASE if _is_folder_name(model_dir) else None)

    def __init__(self, model_dir: str | os.PathLike[str], grounded: bool | None = True, max_new_tokens: int = 96,
                 device: str = "cpu", dtype: Any = None) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.model_dir = os.fspath(model_dir)
        self.max_new_tokens = int(max_new_tokens)
        self.vlm = load_vlm(model_dir, device=device, dtype=dtype)
        self.grounded = bool(self.vlm.settings.get("grounded", False)) if grounded is None else bool(grounded)

    def __call__(self, photo: Photo, measures: dict[str, Any], scores: dict[str, float],
                 scene: SceneResult) -> tuple[list[Finding], str]:
        from ..feedback import rules

        findings, rule_text = rules.write(photo, measures, scores, scene)
        grounding = grounding_from(scores, scene, findings) if self.grounded else None
        text = self.vlm.generate(photo, grounding, max_new_tokens=self.max_new_tokens)
        if text:
            return findings, text
        note = Finding("vlm_no_text", "info", "The VLM feedback writer produced no text, so the paragraph is the "
                       "rule-based one", f"Check the model {self.model_dir}: an untrained base, or one fine-tuned on "
                       "too little data, can stop at once.")
        return [*findings, note], rule_text


__all__ = [
    "ADAPTER_FILES", "BASE_FILES", "DEFAULT_BASE", "GENERATION", "INSTRUCTION", "SETTINGS_FILE", "VLM",
    "VLMFeedback", "build_prompt", "chat_prompt", "encode_prompt", "grounding_from", "is_run_dir", "load_base",
    "load_processor", "load_vlm", "read_settings", "tile_size", "to_pil", "write_settings",
]
