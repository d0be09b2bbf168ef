"""Training recipes as data: the schema of ``recipes/*.yaml``, loading with overrides, and the
learning-rate schedule each stage declares."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eventclip.datasets.augment import AugmentConfig
from eventclip.errors import ConfigError
from eventclip.frames.preprocess import Representation
from eventclip.model.card import representation_from
from eventclip.train.losses import LossConfig

RECIPES = Path(__file__).with_name("recipes")


class StageConfig(BaseModel):
    """One optimisation stage: epochs, batch size (per process), AdamW and the warm-up/cosine schedule."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=1)
    lr: float = Field(gt=0)
    min_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_epochs: float = Field(0.0, ge=0)


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unseen_fraction: float = 0.25
    val_per_class: int = Field(1, ge=0)
    seed: int = 0


class Recipe(BaseModel):
    """A training recipe, as data (YAML). See ``recipes/default.yaml`` for every field."""

    model_config = ConfigDict(extra="forbid")
    name: str = "custom"
    seed: int = 0
    data: dict[str, Any] = Field(description="{'synth': {...SynthConfig fields}} or {'folder': path}")
    split: SplitConfig = SplitConfig()
    model: dict[str, Any]
    representation: dict[str, Any]
    stage1: StageConfig | None = None
    stage2: StageConfig
    losses: dict[str, Any] = Field(default_factory=dict)
    augment: dict[str, Any] = Field(default_factory=dict)
    stage1_augment: dict[str, Any] | None = Field(None, description="image augmentation of stage 1 (AugmentConfig)")
    description: str = Field("", description="what the trained model knows, for its card (training.what_it_knows)")
    sample: str | None = Field(None, description="a labelled sample recording (with its .json) to score before and "
                               "after stage 2, or 'bundled' for eventclip's own sample (the demo's figure)")

    def loss_config(self) -> LossConfig:
        """The ``losses`` section as a LossConfig; a wrong key or value is a ConfigError naming it."""
        try:
            return LossConfig(**self.losses)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"recipe field 'losses': {exc} (keys: ct, zs, kl, pred, alpha, t_event, t_image, "
                              f"t_zscl)") from exc

    def representation_model(self) -> Representation:
        """The ``representation`` section, read as a model card's is; a bad field is a ConfigError naming it."""
        return representation_from(self.representation, "recipe", error=ConfigError)

    def augment_config(self, stage: int = 2) -> AugmentConfig | None:
        """Stage 2's event+view augmentation, or stage 1's image augmentation (None when not set)."""
        if stage == 1 and self.stage1_augment is None:
            return None
        field = "augment" if stage == 2 else "stage1_augment"
        a = dict(getattr(self, field))
        if "crop_scale" in a:
            a["crop_scale"] = tuple(a["crop_scale"])
        try:
            return AugmentConfig(**a)
        except TypeError as exc:
            raise ConfigError(f"recipe field {field!r}: {exc} (see eventclip.datasets.augment.AugmentConfig)") from exc


def load_recipe(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a shipped recipe by name (``default``) or a YAML file; ``overrides`` use dotted keys (``stage2.epochs``)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in RECIPES.glob("*.yaml"))
        raise ConfigError(f"recipe {name_or_path!r} not found (shipped recipes: {shipped}; or pass a YAML path)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid recipe: {fields}") from exc
    try:
        recipe.loss_config()
        recipe.augment_config(1)
        recipe.augment_config(2)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return recipe


def lr_at(epoch_float: float, stage: StageConfig) -> float:
    """Linear warm-up to ``lr`` then half-cosine to ``min_lr``, as a function of fractional epoch."""
    if epoch_float < stage.warmup_epochs:
        return stage.min_lr + (stage.lr - stage.min_lr) * epoch_float / stage.warmup_epochs
    span = max(stage.epochs - stage.warmup_epochs, 1e-9)
    progress = min((epoch_float - stage.warmup_epochs) / span, 1.0)
    return stage.min_lr + (stage.lr - stage.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


