"""Zero-shot prompt sets (YAML), their validation, and cached text embeddings.

Schema (documented in ``zero_shot_prompts/README.md``)::

    templates: ["a photo of a {}.", "an event camera image of a {}."]   # global; "{}" = class name
    classes:
      - name: airplane
        synonyms: [aeroplane, jet]          # optional; more names averaged into the same class
                                            # (underscores in names become spaces in prompts)
        templates: ["a sketch of a {}."]    # optional; replaces the global templates for this class
      - dog                                 # a plain string is a class with only a name
    anomaly:                                # optional
      normal: ["an empty corridor"]
      abnormal: ["a person lying on the floor"]
      threshold: 0.5                        # anomaly score at/above which a window is flagged
    top_k: 5                                # labels reported per window
    threshold: 0.0                          # labels below this probability are not reported

A class embedding is CLIP's ensemble: every (name or synonym) × template prompt is embedded,
normalised, averaged and renormalised. Errors name the file, line and field, every problem of the file
at once (one line each).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from eventclip.errors import ConfigError

DEFAULT_TEMPLATES = ("a photo of a {}.", "an event camera image of a {}.")

TextEncodeFn = Callable[[list[str]], np.ndarray]
"""Any ``encode_text(prompts) -> (N, D)`` array: EventClip.encode_text_numpy, an ONNX text encoder, ..."""


class PromptsError(ConfigError):
    """A prompts file is unreadable or invalid; the message is ``file:line: field: problem``."""


def _check_template(t: str) -> str:
    if "{}" not in t:
        raise ValueError(f"template {t!r} has no '{{}}' where the class name goes")
    return t


class ClassSpec(BaseModel):
    """One class: its label, optional synonyms, optional own templates."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    synonyms: list[str] = Field(default_factory=list)
    templates: list[str] | None = None

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("templates, when given, must not be empty (omit it to use the global ones)")
            for t in v:
                _check_template(t)
        return v

    @property
    def names(self) -> list[str]:
        return [self.name, *self.synonyms]


class AnomalySpec(BaseModel):
    """Descriptions of normal and abnormal scenes for the prompt-based anomaly score."""

    model_config = ConfigDict(extra="forbid")

    normal: list[str] = Field(min_length=1)
    abnormal: list[str] = Field(min_length=1)
    threshold: float = Field(0.5, ge=0.0, le=1.0)


class PromptSet(BaseModel):
    """A validated prompts file."""

    model_config = ConfigDict(extra="forbid")

    templates: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPLATES), min_length=1)
    classes: list[ClassSpec]
    anomaly: AnomalySpec | None = None
    top_k: int = Field(5, ge=1)
    threshold: float = Field(0.0, ge=0.0, le=1.0)

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: list[str]) -> list[str]:
        for t in v:
            _check_template(t)
        return v

    @field_validator("classes", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": c} if isinstance(c, str) else c for c in v]
        return v

    @model_validator(mode="after")
    def _classes(self) -> PromptSet:
        if not self.classes:
            raise PydanticCustomError("empty_classes", "the class list is empty; list at least one class",
                                      {"at": ("classes",)})
        for i, name, first in duplicate_classes([c.name for c in self.classes]):
            raise PydanticCustomError(
                "duplicate_class", "duplicate class name '{name}' (first at classes[{first}])",
                {"name": name, "first": first, "at": ("classes", i, "name")},
            )
        return self

    @property
    def labels(self) -> list[str]:
        return [c.name for c in self.classes]

    def prompts_for(self, spec: ClassSpec) -> list[str]:
        """Every prompt whose embedding is averaged into ``spec``'s class embedding.

        Underscores in names become spaces (``car_side`` -> "car side"), so dataset folder names
        can be labels as they are.
        """
        names = [n.replace("_", " ") for n in spec.names]
        return [t.replace("{}", n) for n in names for t in (spec.templates or self.templates)]

    @property
    def sha256(self) -> str:
        """Hash of what decides the text embeddings: templates, classes, anomaly descriptions.

        Not the file's formatting, nor ``top_k``/thresholds, which only change how results are reported.
        """
        content = self.model_dump(mode="json", include={"templates", "classes"})
        if self.anomaly is not None:
            content["anomaly"] = [self.anomaly.normal, self.anomaly.abnormal]
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def duplicate_classes(names: list[Any]) -> list[tuple[int, str, int]]:
    """(index, name, index of its first use) for every class name used before (case and spaces ignored);
    entries that are not strings are skipped (the schema reports them)."""
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        key = name.strip().lower()
        if key in seen:
            out.append((i, name, seen[key]))
        else:
            seen[key] = i
    return out


def _raw_names(data: dict[str, Any]) -> list[Any]:
    """The class names of an unvalidated prompts mapping (plain strings or ``{name: ...}`` entries)."""
    classes = data.get("classes")
    if not isinstance(classes, list):
        return []
    return [c if isinstance(c, str) else c.get("name") if isinstance(c, dict) else None for c in classes]


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic error location ``loc`` (deepest node found)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            break
        node, line = nxt, nxt.start_mark.line + 1
    return line


def _field_loc(err: dict[str, Any]) -> tuple[Any, ...]:
    """Error location; whole-set checks carry theirs in ``ctx['at']``."""
    at = (err.get("ctx") or {}).get("at")
    return tuple(at) if at else tuple(err["loc"])


def parse_prompts(text: str, source: str = "<string>") -> PromptSet:
    """Validate prompts YAML ``text``; PromptsError says ``source:line: field: problem``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise PromptsError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    if not isinstance(data, dict):
        raise PromptsError(f"{source}:1: the top level must be a mapping with 'classes' (and optional "
                           f"'templates', 'anomaly', 'top_k', 'threshold'), got {type(data).__name__}")
    try:
        return PromptSet.model_validate(data)
    except ValidationError as exc:
        problems = [(_field_loc(err), str(err["msg"]).removeprefix("Value error, ")) for err in exc.errors()
                    if err["type"] != "duplicate_class"]
        # The whole-set checks run only once every field is valid: run the name check here as well, so
        # that one pass reports every problem of the file.
        problems += [(("classes", i, "name"), f"duplicate class name '{name}' (first at classes[{first}])")
                     for i, name, first in duplicate_classes(_raw_names(data))]
        lines = sorted((_line_of(root, loc) or 0, _field_name(loc), msg) for loc, msg in problems)
        text = [f"{source}:{line}: {field}: {msg}" for line, field, msg in lines]
        if len(text) == 1:
            raise PromptsError(text[0]) from exc
        raise PromptsError(f"{source}: {len(text)} problems:\n" + "\n".join("  " + t for t in text)) from exc


def _field_name(loc: tuple[Any, ...]) -> str:
    """``classes[2].name`` for a pydantic location."""
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[") or "(top level)"


def load_prompts(path: str | Path) -> PromptSet:
    """Read and validate a prompts YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptsError(f"{path}: cannot read the prompts file ({exc})") from exc
    return parse_prompts(text, str(path))


@dataclass(frozen=True)
class TextEmbeddings:
    """Unit-length text embeddings of a prompt set: classes (C, D); anomaly descriptions (Nn, D), (Na, D)."""

    labels: list[str]
    classes: np.ndarray
    normal: np.ndarray | None = None
    abnormal: np.ndarray | None = None


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def embed_prompts(prompts: PromptSet, encode_text: TextEncodeFn) -> TextEmbeddings:
    """Embed every prompt in one call and ensemble per class (mean of unit vectors, renormalised)."""
    per_class = [prompts.prompts_for(c) for c in prompts.classes]
    flat = [p for group in per_class for p in group]
    extra: list[str] = []
    if prompts.anomaly is not None:
        extra = prompts.anomaly.normal + prompts.anomaly.abnormal
    emb = _unit(encode_text(flat + extra))
    if emb.shape[0] != len(flat) + len(extra):
        raise ValueError(f"encode_text returned {emb.shape[0]} rows for {len(flat) + len(extra)} prompts")
    classes, start = [], 0
    for group in per_class:
        classes.append(emb[start : start + len(group)].mean(axis=0))
        start += len(group)
    normal = abnormal = None
    if prompts.anomaly is not None:
        n = len(prompts.anomaly.normal)
        normal, abnormal = emb[start : start + n], emb[start + n :]
    return TextEmbeddings(prompts.labels, _unit(np.stack(classes)), normal, abnormal)


def default_cache_dir() -> Path:
    """``$EVENTCLIP_CACHE/text`` or ``~/.cache/eventclip/text``."""
    base = os.environ.get("EVENTCLIP_CACHE") or Path.home() / ".cache" / "eventclip"
    return Path(base) / "text"


def cached_text_embeddings(
    prompts: PromptSet, encode_text: TextEncodeFn, model_hash: str, cache_dir: str | Path | None = None
) -> TextEmbeddings:
    """Text embeddings, computed once per (model hash, prompts hash) and reused from ``cache_dir``.

    The file is an ``.npz`` (no pickles); a corrupt cache entry is recomputed, not trusted.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(f"{model_hash}|{prompts.sha256}".encode()).hexdigest()[:32]
    path = folder / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                labels = [str(s) for s in z["labels"]]
                if labels == prompts.labels:
                    has = "normal" in z.files
                    return TextEmbeddings(labels, z["classes"], z["normal"] if has else None,
                                          z["abnormal"] if has else None)
        except (OSError, ValueError, KeyError):
            pass
    emb = embed_prompts(prompts, encode_text)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"labels": np.array(emb.labels), "classes": emb.classes}
    if emb.normal is not None:
        arrays |= {"normal": emb.normal, "abnormal": emb.abnormal}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return emb
