"""The model card (``model.json``): everything needed to rebuild and trust a model package.

The card is data, not code: the open_clip architecture config, the image size and normalisation,
the event representation (frames contract) with its parameters, where the weights came from, what
they were trained on and how accurate they measured, sha256 hashes of every file, and the versions
of eventclip/torch/open_clip that wrote it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eventclip.errors import EventclipError
from eventclip.model.errors import PackageError

if TYPE_CHECKING:
    from eventclip.frames.preprocess import Representation

CARD_FILE = "model.json"
CARD_FORMAT = 2
"""2: the representation records ``count_at``; format-1 cards, written before it existed, counted
events at sensor resolution, so :meth:`ModelCard.representation_model` reads them that way."""

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
"""CLIP's RGB normalisation mean (OpenAI) for f_I's images, scaled to [0, 1] first; event frames
follow the representation's own ``mean``/``std``."""
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def representation_from(fields: Mapping[str, Any], origin: str, *, authors: bool = False,
                        error: type[EventclipError] = PackageError) -> Representation:
    """A :class:`~eventclip.frames.preprocess.Representation` from stored fields: a card's, an export
    manifest's, a training recipe's. The one place they are turned into one, so every consumer reads
    them alike; ``authors`` starts from the authors' preprocessing, which ``fields`` override.
    Invalid fields raise ``error`` naming ``origin`` and each bad field.
    """
    from eventclip.frames.preprocess import Representation  # numba kernels: not for readers of a card alone

    try:
        return Representation.authors(**fields) if authors else Representation(**fields)
    except ValidationError as exc:
        where = "; ".join(f"representation.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise error(f"{origin}: invalid representation ({where})") from exc


class ModelCard(BaseModel):
    """Contents of ``model.json``. ``logit_scale`` is CLIP's *log* temperature: cosine × exp(logit_scale)."""

    model_config = ConfigDict(extra="forbid")

    format: int = CARD_FORMAT
    name: str = "eventclip"
    architecture: str = Field(description="open_clip model name, or 'custom' for a config given as data")
    clip_config: dict[str, Any] = Field(
        description="open_clip CLIP(**cfg) kwargs: embed_dim, vision_cfg, text_cfg, quick_gelu")
    input_size: int = Field(gt=0, description="square input side of the vision tower, pixels")
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    representation: dict[str, Any] | None = Field(
        default=None, description="eventclip.frames.preprocess.Representation fields (variant, window_us, ...)"
    )
    preprocessing_variant: str = Field(default="eventclip", description="'eventclip' or 'authors' (Jeong et al.)")
    logit_scale: float = Field(description="log of the cosine-similarity multiplier, as in CLIP")
    embed_dim: int = Field(gt=0)
    context_length: int = Field(gt=0)
    tokenizer: str = "tokenizer/bpe_simple_vocab_16e6.txt.gz"
    source: str = Field(default="random init", description="where the weights came from (file, loader)")
    training: dict[str, Any] = Field(default_factory=dict, description="training data and recipe")
    accuracy: dict[str, Any] = Field(default_factory=dict, description="measured accuracy: metric -> value")
    heads: dict[str, str] = Field(default_factory=dict, description="head name -> file under heads/")
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256 hex")
    model_hash: str = ""
    versions: dict[str, str] = Field(default_factory=dict)

    def representation_model(self) -> Representation:
        """The card's event representation as a :class:`~eventclip.frames.preprocess.Representation`.

        One reading for every consumer (classify, the daemon, training, exports), so they cannot
        differ. A card without one gets the defaults at its ``input_size``; a format-1 card that does
        not say ``count_at`` counted at sensor resolution, which is kept.
        """
        fields = dict(self.representation or {"input_size": self.input_size})
        if self.format < 2:
            fields.setdefault("count_at", "sensor")
        return representation_from(fields, CARD_FILE)

    @property
    def logit_multiplier(self) -> float:
        """exp(logit_scale): the factor applied to cosine similarities before a softmax."""
        import math

        return math.exp(self.logit_scale)

    def write(self, folder: Path) -> None:
        """Write ``model.json`` into ``folder`` (pretty JSON, stable key order)."""
        (Path(folder) / CARD_FILE).write_text(json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        """Read and validate ``folder/model.json``; errors name the file and the field."""
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            raise PackageError(f"{path}: missing; a model package folder must hold {CARD_FILE} "
                               f"(is {folder} a package?)")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PackageError(f"{path}: not readable JSON ({exc})") from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PackageError(f"{path}: invalid model card ({fields})") from exc


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_files(folder: Path, card: ModelCard) -> None:
    """Check every file the card lists exists and matches its hash; raise PackageError naming it."""
    for rel, expected in sorted(card.files.items()):
        path = Path(folder) / rel
        if not path.is_file():
            raise PackageError(f"{path}: missing from the model package (listed in {CARD_FILE}); copy the whole folder")
        actual = sha256_file(path)
        if actual != expected:
            raise PackageError(
                f"{path}: sha256 {actual} does not match {expected} recorded in {CARD_FILE}; the file was altered "
                "or truncated; copy the package again"
            )
