"""Notice windows whose model input is nearly blank, and say why and what to try.

Why: a nearly blank input still gives an embedding and a confident-looking label, the same for
every window, so nothing downstream shows that the encoder saw nothing. Two causes are common:
a large sensor counted at sensor resolution and averaged down to the model's size (the contrast
is gone: ``count_at: sensor``), and windows too short or a scene too still for the events to
cover more than a few pixels. :class:`BlankWatch` checks each batch of model inputs and warns
once per cause, with the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MIN_PEAK = 0.25
"""Below this brightest-pixel level (fraction of full scale) a window counts as washed out."""
MIN_COVERAGE = 0.01
"""Below this fraction of input pixels holding events a window counts as nearly empty."""


@dataclass(frozen=True)
class Blankness:
    """One window's model input, back on the frame scale: ``peak`` = brightest pixel's level above
    the empty-pixel level (0..1 of full scale); ``coverage`` = fraction of pixels above 5 % of it."""

    peak: float
    coverage: float


def blankness(model_input: Any, representation: Any) -> list[Blankness]:
    """Per window of a (B, 3, S, S) model input (numpy or torch): how bright and how covered it is.

    Undoes the representation's mean/std on channel 0 and measures the level above the value an
    empty pixel gets (0, or -1 for ``authors``), relative to the full range (1, or 2 for ``authors``).
    """
    x = model_input[:, 0]
    if hasattr(x, "detach"):
        x = x.detach().float()
    level = x * float(representation.std[0]) + float(representation.mean[0])
    empty, full = (-1.0, 2.0) if representation.variant == "authors" else (0.0, 1.0)
    signal = (level - empty) / full
    if hasattr(signal, "amax"):
        peak = signal.amax(dim=(1, 2)).cpu().numpy()
        coverage = (signal > 0.05).float().mean(dim=(1, 2)).cpu().numpy()
    else:
        peak = signal.max(axis=(1, 2))
        coverage = (signal > 0.05).mean(axis=(1, 2))
    return [Blankness(float(p), float(c)) for p, c in zip(np.asarray(peak), np.asarray(coverage), strict=True)]


@dataclass
class BlankWatch:
    """Warns once per cause when windows reach the encoder nearly blank; counts them.

    ``where`` names the caller in the message (a file, ``eventclipd``).
    """

    representation: Any
    where: str = "eventclip"
    counts: dict[str, int] = field(default_factory=lambda: {"washed_out": 0, "nearly_empty": 0})
    _warned: set[str] = field(default_factory=set)

    def check(self, model_input: Any, n_events: list[int] | None = None) -> None:
        """Look at a batch of model inputs (``n_events`` per window, for the message) and warn."""
        rep = self.representation
        for i, b in enumerate(blankness(model_input, rep)):
            events = None if n_events is None else n_events[i]
            if events == 0:
                continue  # an empty window is reported as such, not as a blank frame
            if b.peak < MIN_PEAK:
                self._warn("washed_out", (
                    f"{self.where}: windows reach the encoder nearly blank (brightest pixel {b.peak:.0%} of full "
                    f"scale): the model counts events at sensor resolution (count_at: sensor) and averaging down "
                    f"to {rep.input_size} px washes them out. Use a package whose representation has count_at: "
                    "model (re-import the checkpoint or re-train; docs/frames.md)"))
            elif b.coverage < MIN_COVERAGE:
                self._warn("nearly_empty", (
                    f"{self.where}: windows reach the encoder nearly empty (events on {b.coverage:.2%} of the "
                    f"{rep.input_size}x{rep.input_size} input pixels"
                    + (f", {events} events" if events is not None else "")
                    + "): the windows are too short for this scene. Lengthen them (--window-us) or check the "
                    "sensor's bias settings"))

    def _warn(self, cause: str, message: str) -> None:
        self.counts[cause] += 1
        if cause not in self._warned:
            self._warned.add(cause)
            log.warning("%s", message)
