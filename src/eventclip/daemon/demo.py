"""What ``eventclipd --demo`` prints: what the sample shows, where the stream is published, how to
watch it from another shell, then one line per window with the sample's true label beside the
model's prediction, and how often the two agreed.

Why: the demo is the first thing a new user runs; bare label lines say neither what is being
watched nor whether the labels are right. The sample ships its ground truth (``sample.json``:
``segments`` of ``{t_start_us, t_end_us, label, text}``), so each window is compared with the
segment holding its middle; prompts name classes by their ``text``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from eventclip.daemon.subscriber import pretty_line, print_stream

_COLUMNS = f"{'time':>11} {'events':>8}  {'true label':<28}  predicted (top 3)  (latency)"


class Truth:
    """The sample's labelled segments (µs); :meth:`at` gives the text of the one holding a window's middle."""

    def __init__(self, labels_file: Path) -> None:
        meta = json.loads(Path(labels_file).read_text(encoding="utf-8"))
        self.meta = meta
        self.segments = sorted(meta.get("segments", []), key=lambda s: s["t_start_us"])

    def at(self, t_start_us: int, t_end_us: int) -> str | None:
        middle = (t_start_us + t_end_us) // 2
        for seg in self.segments:
            if seg["t_start_us"] <= middle < seg["t_end_us"]:
                return seg.get("text") or seg["label"]
        return None

    def describe(self) -> str:
        """One sentence on what the sample shows."""
        texts = list(dict.fromkeys(s.get("text") or s["label"] for s in self.segments))
        size = "x".join(str(v) for v in self.meta.get("geometry", [])) or "?"
        seconds = self.meta.get("duration_us", 0) / 1e6
        return (f"{self.meta.get('recording', 'the sample')}: a {size} event camera watching {len(self.segments)} "
                f"scenes in {seconds:.1f} s: {', '.join(texts)}")


class DemoPrinter:
    """``eventclipd --demo``'s subscriber thread (``run(endpoint, prefix)``): an introduction, then the stream."""

    def __init__(self, out: TextIO, truth: Truth | None, model: str, speed: float) -> None:
        self.out, self.truth, self.model, self.speed = out, truth, model, speed
        self.windows = self.right = 0

    def run(self, endpoint: str, prefix: str) -> None:
        say = self.out.write
        if self.truth is not None:
            say(f"Sample recording: {self.truth.describe()}.\n")
        pace = "as fast as it can" if self.speed == 0 else f"at {self.speed:g}x real time"
        say(f"Model: {self.model}, replayed {pace}.\n")
        say(f"Publishing on {endpoint}. To watch it from another shell (eventclipd --demo --speed 0.1 gives you "
            f"time), run:\n    eventclip listen {endpoint} --pretty\n\n{_COLUMNS}\n")
        self.out.flush()
        print_stream(endpoint, [f"{prefix}/labels", f"{prefix}/status"], self.out, line=self.line)
        if self.truth is not None and self.windows:
            say(f"top-1 equals the true label in {self.right} of {self.windows} labelled windows\n")
            self.out.flush()

    def line(self, topic: str, msg: dict) -> str:
        """A window's line with its true label (and ✓ when the top label is it); other topics as ``--pretty``."""
        if not topic.endswith("/labels") or self.truth is None:
            return pretty_line(topic, msg)
        truth = self.truth.at(msg["t_start_us"], msg["t_end_us"])
        top = msg["labels"][0]["label"] if msg["labels"] else None
        self.windows += truth is not None
        self.right += truth is not None and top == truth
        mark = "✓" if truth is not None and top == truth else " "
        labels = ", ".join(f"{lab['label']} {lab['score']:.2f}" for lab in msg["labels"]) or "(none)"
        return (f"[{msg['t_start_us'] / 1e6:7.3f} s] {msg['n_events']:>8}  {truth or '-':<28}{mark} {labels}"
                f"  ({msg['latency_ms']:.1f} ms)")
