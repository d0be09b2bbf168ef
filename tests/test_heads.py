"""Heads on synthetic embeddings whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.errors import ConfigError
from eventclip.heads.base import Result, unit
from eventclip.heads.probe import LinearProbe
from eventclip.heads.prompt_anomaly import PromptAnomaly
from eventclip.heads.reference_anomaly import ReferenceAnomaly
from eventclip.heads.saved import head_from_arrays
from eventclip.heads.smoothing import Ema
from eventclip.heads.tip import TipAdapter
from eventclip.heads.zero_shot import ZeroShotHead

D, C = 32, 6


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def clusters(rng, centers, per_class, noise):
    y = np.repeat(np.arange(len(centers)), per_class)
    return unit(centers[y] + noise * rng.standard_normal((len(y), centers.shape[1]))), y


def test_zero_shot_returns_the_matching_labels(rng):
    frames = unit(rng.standard_normal((C, D)))
    labels = [f"class{i}" for i in range(C)]
    order = rng.permutation(C)  # text embeddings made to match known frame embeddings, shuffled
    head = ZeroShotHead(frames[order] * 5.0, [labels[i] for i in order], logit_scale=100.0, top_k=3)
    out = head(frames)
    assert [row[0][0] for row in out] == labels
    assert all(len(row) == 3 and row[0][1] > 0.9 and row[0][1] >= row[1][1] >= row[2][1] for row in out)
    np.testing.assert_allclose(head.probs(frames).sum(axis=1), 1.0, rtol=1e-6)
    wrong = ZeroShotHead(frames[np.roll(np.arange(C), 1)], labels, 100.0, 1)  # mismatched labels must fail
    assert [row[0][0] for row in wrong(frames)] != labels


def test_zero_shot_threshold_and_dimension_check(rng):
    head = ZeroShotHead(unit(rng.standard_normal((C, D))), [str(i) for i in range(C)], 1.0, top_k=C, threshold=0.5)
    assert all(len(row) == 0 for row in head(rng.standard_normal((4, D))))  # near-uniform probs < 0.5
    with pytest.raises(ValueError, match="16 dimensions but the head expects 32"):
        head(rng.standard_normal((2, 16)))


@pytest.mark.parametrize("k", [1, 2, 5, 10, 20])
def test_few_shot_heads_on_separable_clusters(rng, k):
    centers = unit(rng.standard_normal((C, D)))
    labels = [f"c{i}" for i in range(C)]
    xs, ys = clusters(rng, centers, k, noise=0.15)
    xt, yt = clusters(rng, centers, 40, noise=0.15)
    probe = LinearProbe.fit(xs, ys, labels)
    tip = TipAdapter(xs, ys, labels)
    assert (probe.probs(xt).argmax(1) == yt).mean() >= 0.95
    assert (tip.probs(xt).argmax(1) == yt).mean() >= 0.95


def test_few_shot_uses_text_when_support_is_misleading(rng):
    """With uninformative zero-shot text, Tip's cache must carry it; with good text and no cache, text must."""
    centers = unit(rng.standard_normal((C, D)))
    labels = [str(i) for i in range(C)]
    xs, ys = clusters(rng, centers, 1, noise=0.15)
    xt, yt = clusters(rng, centers, 30, noise=0.15)
    tip_text_only = TipAdapter(xs, ys, labels, text_embeddings=centers, alpha=0.0)
    assert (tip_text_only.probs(xt).argmax(1) == yt).mean() >= 0.95
    wrong_text = centers[np.roll(np.arange(C), 1)]
    assert (TipAdapter(xs, ys, labels, text_embeddings=wrong_text, alpha=0.0).probs(xt).argmax(1) == yt).mean() < 0.2
    xs, ys = clusters(rng, centers, 1, noise=0.4)  # overlapping clusters: one shot is not enough alone
    xt, yt = clusters(rng, centers, 40, noise=0.4)
    with_text = LinearProbe.fit(xs, ys, labels, text_embeddings=centers)
    without = LinearProbe.fit(xs, ys, labels)
    assert (with_text.probs(xt).argmax(1) == yt).mean() > (without.probs(xt).argmax(1) == yt).mean() + 0.1


def test_heads_round_trip_through_arrays(rng):
    centers = unit(rng.standard_normal((C, D)))
    xs, ys = clusters(rng, centers, 3, 0.1)
    x = rng.standard_normal((5, D))
    for head in (LinearProbe.fit(xs, ys, list("abcdef")), TipAdapter(xs, ys, list("abcdef"), text_embeddings=centers),
                 ReferenceAnomaly.fit(xs, k=2, quantile=0.9)):
        arrays, meta = head.to_arrays()
        again = head_from_arrays(arrays, meta)
        np.testing.assert_array_equal(again(x) if isinstance(head, ReferenceAnomaly) else again.probs(x),
                                      head(x) if isinstance(head, ReferenceAnomaly) else head.probs(x))
    with pytest.raises(ConfigError, match="unknown head kind"):
        head_from_arrays({}, {"kind": "mystery"})


def test_prompt_anomaly_is_mass_on_abnormal(rng):
    normal, abnormal = unit(rng.standard_normal((3, D))), unit(rng.standard_normal((2, D)))
    score = PromptAnomaly(normal, abnormal, 100.0)
    s = score(np.concatenate([normal, abnormal]))
    assert np.all(s[:3] < 0.05) and np.all(s[3:] > 0.95)
    assert np.all((s >= 0) & (s <= 1))


def test_reference_anomaly_ranks_outliers_and_calibrates_the_quantile(rng):
    center = unit(rng.standard_normal((1, D)))
    normal, _ = clusters(rng, center, 400, noise=0.2)
    held_out, _ = clusters(rng, center, 400, noise=0.2)
    outliers = unit(rng.standard_normal((20, D)))
    bank = ReferenceAnomaly.fit(normal, k=3, quantile=0.9)
    s_normal, s_out = bank(held_out), bank(outliers)
    assert s_out.min() > s_normal.max()  # every injected outlier ranks above every normal window
    assert 0.8 <= (s_normal < 0.5).mean() <= 0.97  # ~90 % of normal windows score below 0.5
    assert np.all(s_normal >= 0) and np.all(s_out < 1)
    assert bank(normal[:1])[0] < 0.5
    with pytest.raises(ConfigError, match="need at least 4"):
        ReferenceAnomaly.fit(normal[:3], k=3)


def test_ema_smooths_and_keeps_state():
    ema = Ema(alpha=0.5)
    np.testing.assert_allclose(ema(np.array([1.0, 0.0])), [1.0, 0.5])
    np.testing.assert_allclose(ema(np.array([0.0])), [0.25])
    with pytest.raises(ConfigError, match="alpha"):
        Ema(alpha=0.0)


def test_result_serialises():
    r = Result(0, 33_000, [("dog", 0.75)], 0.2, False, 12)
    assert r.to_dict() == {"t_start_us": 0, "t_end_us": 33_000, "n_events": 12,
                           "labels": [{"label": "dog", "score": 0.75}], "anomaly": 0.2, "flag": False}


def test_a_head_registered_in_one_file_is_offered_by_eval_and_stored_in_packages():
    """The heads family uses the one plugin registry: a new fitted label head is a choice of
    `eventclip eval --head`, a kind a package may store, and rebuilt from its arrays by kind."""
    import argparse

    from eventclip.commands import eval as eval_command
    from eventclip.heads.base import HEADS
    from eventclip.heads.saved import head_from_arrays, saved_kinds

    @HEADS.register(kind="nearest_mean", capabilities={"output": "labels", "fitted": True})
    class NearestMean:
        kind = "nearest_mean"

        def __init__(self, means: np.ndarray) -> None:
            self.means = means

        @classmethod
        def from_arrays(cls, arrays, meta):
            return cls(arrays["means"])

    try:
        assert "nearest_mean" in HEADS.choices_where(output="labels", fitted=True)
        assert "nearest_mean" not in HEADS.choices_where(output="anomaly")
        assert "nearest_mean" in saved_kinds()
        assert head_from_arrays({"means": np.ones((2, 3))}, {"kind": "nearest_mean"}).means.shape == (2, 3)
        parser = argparse.ArgumentParser()
        eval_command.add_parser(parser.add_subparsers())
        args = parser.parse_args(["eval", "few-shot", "--dataset", "folder", "--root", ".", "--model", "default",
                                  "--head", "nearest_mean"])
        assert args.head == "nearest_mean"
    finally:
        HEADS.remove("nearest_mean")
    with pytest.raises(ConfigError, match="unknown head kind 'nearest_mean'"):
        head_from_arrays({}, {"kind": "nearest_mean"})
