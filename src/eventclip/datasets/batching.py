"""Items -> the tensors the model reads: CLIP-normalised images for f_I, event frames for f_E.

Shared by training (augmented, random windows) and by retrieval's image queries (plain, centred), so
an image is preprocessed the same way wherever it meets the model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from eventclip.datasets.augment import AugmentConfig, augment_events, edge_sketch, image_view, paired_views
from eventclip.datasets.base import Item, time_window
from eventclip.datasets.cache import EventCache
from eventclip.frames.preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD


class Batcher:
    """Turns items into model tensors: CLIP-normalised images and event-frame model inputs (B, 3, S, S)."""

    def __init__(self, cache: EventCache, representation, augment: AugmentConfig | None) -> None:
        self.cache = cache
        self.rep = representation
        self.augment = augment

    def image_tensor(self, item: Item, rng: np.random.Generator | None = None) -> torch.Tensor:
        """CLIP-normalised (3, S, S); with ``rng`` and ``sketch_p`` > 0, sometimes the image's edge sketch."""
        img = torch.from_numpy(self.cache.image(item.image).copy()).permute(2, 0, 1).float() / 255.0
        if self.augment is not None and rng is not None and rng.random() < self.augment.sketch_p:
            img = edge_sketch(img)
        size = self.rep.input_size
        if img.shape[-1] != size or img.shape[-2] != size:
            img = F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False)[0]
        # Images are f_I's input: CLIP's image normalisation, whatever the event representation uses.
        mean = torch.tensor(OPENAI_CLIP_MEAN)[:, None, None]
        std = torch.tensor(OPENAI_CLIP_STD)[:, None, None]
        return (img - mean) / std

    def frame_tensor(self, item: Item, rng: np.random.Generator | None) -> torch.Tensor:
        events, geometry = self.cache.events(item.events)
        if self.augment is not None and rng is not None:
            events = augment_events(events, geometry, self.augment, rng)
        events = time_window(events, self.rep.window_us, rng if self.augment is not None else None)
        return torch.from_numpy(self.rep([events], geometry)[0])

    def __call__(self, items: list[Item], rng: np.random.Generator | None, images: bool = True,
                 frames: bool = True) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"labels": torch.tensor([it.label for it in items])}
        imgs = [self.image_tensor(it, rng) for it in items] if images else None
        frs = [self.frame_tensor(it, rng) for it in items] if frames else None
        if self.augment is not None and rng is not None and imgs is not None and frs is not None:
            pairs = [paired_views(i, f, self.augment, rng) for i, f in zip(imgs, frs, strict=True)]
            imgs, frs = [p[0] for p in pairs], [p[1] for p in pairs]
        elif self.augment is not None and rng is not None and imgs is not None:
            imgs = [image_view(i, self.augment, rng) for i in imgs]
        if imgs is not None:
            out["images"] = torch.stack(imgs)
        if frs is not None:
            out["frames"] = torch.stack(frs)
        return out
