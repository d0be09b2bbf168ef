"""Camera settings (biases, ROI/RONI, ERC, anti-flicker, trail filter, trigger inputs) and their YAML form.

Why a file of its own: a tuned camera must come back the same after a restart, so the settings a
live Prophesee source applied can be written to YAML (:func:`save_settings`) and read back as the
``settings_file`` of the sensor config (:func:`load_settings`). Metavision's own ``.bias`` files
(one ``value % name`` line per bias) are read by :func:`read_bias_file`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eventclip.errors import ConfigError


class RoiWindow(BaseModel):
    """A rectangle on the sensor, in pixels (top-left corner and size)."""

    model_config = ConfigDict(extra="forbid")
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class AntiFlicker(BaseModel):
    """Hardware anti-flicker: remove (band_stop) or keep only (band_pass) a band of frequencies (Hz)."""

    model_config = ConfigDict(extra="forbid")
    low_hz: int = Field(ge=1)
    high_hz: int = Field(ge=1)
    mode: Literal["band_stop", "band_pass"] = "band_stop"

    @model_validator(mode="after")
    def _check(self) -> AntiFlicker:
        if self.high_hz < self.low_hz:
            raise ValueError(f"anti_flicker.high_hz ({self.high_hz}) is below low_hz ({self.low_hz})")
        return self


class TrailFilter(BaseModel):
    """Hardware event trail filter; ``threshold_us`` is the filter's time constant (µs)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["TRAIL", "STC_CUT_TRAIL", "STC_KEEP_TRAIL"] = "TRAIL"
    threshold_us: int = Field(ge=1)


class CameraSettings(BaseModel):
    """What a Prophesee camera is told at connect (and after every reconnect). Empty: leave defaults."""

    model_config = ConfigDict(extra="forbid")
    bias_file: Path | None = Field(None, description="Metavision .bias file (lines 'value % name')")
    biases: dict[str, int] = Field(default_factory=dict, description="bias values by name; override bias_file")
    roi: list[RoiWindow] = Field(default_factory=list, description="hardware ROI windows (pixels)")
    roi_mode: Literal["roi", "roni"] = Field("roi", description="roi: keep only the windows; roni: drop them")
    erc_rate_ev_s: int | None = Field(None, gt=0, description="event rate control limit (events per second)")
    anti_flicker: AntiFlicker | None = None
    trail_filter: TrailFilter | None = None
    trigger_in: list[Literal["main", "aux"]] = Field(
        default_factory=list, description="external trigger channels to enable; their events arrive in meta['triggers']"
    )

    def all_biases(self) -> dict[str, int]:
        """The bias file's values overridden by ``biases``."""
        merged = read_bias_file(self.bias_file) if self.bias_file else {}
        merged.update(self.biases)
        return merged

    def is_empty(self) -> bool:
        """True when nothing would be changed on the camera."""
        return self == CameraSettings()


def read_bias_file(path: str | os.PathLike) -> dict[str, int]:
    """Parse a Metavision ``.bias`` file: ``<value> % <name>`` per line; ``#`` and blank lines ignored."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"bias_file {path}: cannot read it ({exc.strerror})") from exc
    biases: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        value, sep, name = stripped.partition("%")
        name = name.strip()
        try:
            parsed = int(value.strip())
        except ValueError:
            parsed = None
        if not sep or not name or parsed is None:
            raise ConfigError(
                f"bias_file {path}, line {number}: expected '<integer value> % <bias name>', got {line!r}"
            )
        biases[name] = parsed
    return biases


def write_bias_file(path: str | os.PathLike, biases: dict[str, int]) -> None:
    """Write biases in Metavision's ``.bias`` format, readable by Metavision Studio and :func:`read_bias_file`."""
    Path(path).write_text("".join(f"{value:<8d}% {name}\n" for name, value in biases.items()))


def save_settings(path: str | os.PathLike, settings: CameraSettings) -> None:
    """Write settings as YAML (biases inlined, so the file stands alone)."""
    data = settings.model_dump(mode="json", exclude_defaults=True)
    if settings.bias_file is not None:
        data.pop("bias_file", None)
        data["biases"] = settings.all_biases()
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def load_settings(path: str | os.PathLike) -> CameraSettings:
    """Read settings written by :func:`save_settings` (or by hand); errors name the file and field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"settings_file {path}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings_file {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"settings_file {path}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return CameraSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"settings_file {path}: {problems}") from exc
