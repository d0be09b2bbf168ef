"""Files shipped inside the package: the default model package and a sample recording.

Why here: the quick start, the daemon and the exporters need a model and an input that work
offline right after ``pip install``. Both are made by ``eventclip train --recipe default`` (see
docs/training.md); the model card says what the model knows and how accurate it measured.
"""

from __future__ import annotations

from pathlib import Path

from eventclip.errors import EventclipError

DATA_DIR = Path(__file__).resolve().parent


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise EventclipError(f"{path}: the shipped {what} is missing from this installation; reinstall eventclip "
                             f"or rebuild it with `eventclip train --recipe default` (docs/training.md)")
    return path


def default_model_path() -> Path:
    """Folder of the shipped default model package (a small CLIP trained on the synthetic benchmark)."""
    return _existing(DATA_DIR / "default_model", "default model package")


def sample_recording_path() -> Path:
    """The shipped sample recording (EVT 3.0 ``.raw``, 64×64 sensor, a few seconds, several categories)."""
    return _existing(DATA_DIR / "sample" / "sample.raw", "sample recording")


def sample_labels_path() -> Path:
    """JSON beside the sample: the ground-truth category of each time span (µs) of the sample recording."""
    return _existing(DATA_DIR / "sample" / "sample.json", "sample labels")


def default_prompts_path() -> Path:
    """Prompts YAML of the default model's 74 benchmark categories, with the templates it was trained with."""
    return _existing(DATA_DIR / "default_prompts.yaml", "default prompts")
