"""The ``authors`` representation equals Jeong et al.'s released preprocessing on real recordings.

The reference below is a plain numpy transcription, written for this test from reading their
repository (EavnJeong/Event_Modality_Application: ``data/imagenet_dataset.py`` ``load_event``,
``reshape_event_no_sample``, ``reshape_then_acc_count_pol``, ``remove_hot_pixels`` and
``ImageNetDataset.__getitem__``; ``trainer.py`` ``(event - 0.5) * 2``; ``model/model.py``
``LPTNMmodel.get_event``). Their code hard-codes N-ImageNet's 640x480 sensor; the transcription
takes the recording's own sensor size in its place, which is what running their steps on these
sensors means. Each step is theirs, in their order, in float32 as their tensors are.
"""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.frames.preprocess import Representation
from eventclip.io import read_events
from tests.conftest import LARGE_SENSOR_RECORDINGS, recording

IMAGE = 224


def authors_model_input(events: np.ndarray, width: int, height: int, hot_pixels: bool) -> np.ndarray:
    """(3, 224, 224) float32: what their event encoder receives for one slice of events."""
    # load_event: (N, 4) float32 rows of x, y, t (s), p; polarity 0 becomes -1.
    ev = np.stack([events["x"], events["y"], events["t"], events["p"]], axis=1).astype(np.float32)
    ev[:, 2] /= 1_000_000
    if ev[:, 3].min() >= -0.5:
        ev[:, 3][ev[:, 3] <= 0.5] = -1
    # reshape_event_no_sample: coordinates scaled onto the 224x224 image, in place, float32.
    ev[:, 0] *= IMAGE / width
    ev[:, 1] *= IMAGE / height
    # reshape_then_acc_count_pol (no augmentation at evaluation): per-polarity counts, positive first.
    pos, neg = ev[ev[:, 3] > 0], ev[ev[:, 3] < 0]

    def count(e: np.ndarray) -> np.ndarray:
        index = e[:, 0].astype(np.int64) + e[:, 1].astype(np.int64) * IMAGE
        return np.bincount(index, minlength=IMAGE * IMAGE).reshape(IMAGE, IMAGE)

    x = np.stack([count(pos), count(neg)]).astype(np.float32)
    # remove_hot_pixels (their cfg option): clip at the mean of the values above 0.1.
    if hot_pixels:
        x = np.minimum(x, x[x > 0.1].mean(dtype=np.float32))
    # __getitem__: each channel / (its max + 1); trainer: (x - 0.5) * 2; get_event: channel mean, 3 copies.
    x = x / (x.max(axis=(1, 2), keepdims=True) + 1)
    x = (x - 0.5) * 2
    mean = x.mean(axis=0)
    return np.stack([mean, mean, mean])


RECORDINGS = [*LARGE_SENSOR_RECORDINGS, "ncars_obj_004397_td.dat"]


@pytest.mark.parametrize("name", RECORDINGS)
@pytest.mark.parametrize("hot_pixels", [False, True])
def test_authors_representation_equals_their_dataset_code(name, hot_pixels):
    chunk = read_events(recording(name))
    g = chunk.geometry
    rep = Representation.authors(clip_nonzero_mean=hot_pixels)
    # Their slices are 30,000 consecutive events; take two such windows from the recording.
    windows = [chunk.events[:30_000], chunk.events[len(chunk.events) // 2:][:30_000]]
    ours = rep(windows, g)
    for window, got in zip(windows, ours, strict=True):
        want = authors_model_input(window, g.width, g.height, hot_pixels)
        assert got.shape == want.shape == (3, IMAGE, IMAGE)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
        assert (want > -1).mean() > 0.002, "the window must hold events for the comparison to mean anything"
