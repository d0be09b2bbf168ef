"""Training-side throughput: ours beside tonic in one process. Prints medians and ratios; never asserts.

Rows:
* per-recording data pipeline (augment, then one count frame at the model's input size):
  eventclip.datasets.augment (time flip, shift, correlated noise) + frames.Representation vs tonic's
  RandomTimeReversal + UniformNoise + ToFrame + the same resize/normalise, on the same recording
  (tonic has no shift that drops events, so its pipeline does slightly less work);
* benchmark synthesis: one saccade recording rendered and converted (ours only; no installed peer
  renders saccade recordings);
* one stage-2 optimisation step (f_I forward, f_E forward/backward, L_ct + 0.1 L_zs + L_kl) of the
  default recipe's model at batch 32 (ours only).

Run: OMP_NUM_THREADS=1 python benchmarks/bench_training.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)

    import tonic.transforms as T

    from eventclip.datasets.augment import AugmentConfig, augment_events
    from eventclip.frames.preprocess import Representation
    from eventclip.train import synth
    from eventclip.train.losses import LossConfig, total_loss
    from eventclip.train.recipe import load_recipe

    cfg = synth.SynthConfig(emoji=1, letters=0, digits=0, samples_per_class=1)
    rng = np.random.default_rng(0)
    sprite = synth.build_sprites(cfg, rng)[0][1][0]
    frames, t, _ = synth.render_recording(sprite, cfg, rng)
    events = synth.video_to_events(frames, t, cfg.threshold, rng, cfg.noise_hz_per_px)
    geo = cfg.geometry
    rep = Representation(variant="paper", window_us=300_000, input_size=64)
    aug = AugmentConfig(max_shift_px=6)

    def ours_pipeline():
        ev = augment_events(events, geo, aug, rng)
        return rep([ev], geo)

    tonic_events = np.zeros(len(events), dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    for f in ("x", "y", "t", "p"):
        tonic_events[f] = events[f]
    sensor = (geo.width, geo.height, 2)
    tonic_tf = T.Compose([T.RandomTimeReversal(p=0.5), T.UniformNoise(sensor_size=sensor, n=(100, 5000)),
                          T.ToFrame(sensor_size=sensor, n_time_bins=1)])

    def tonic_pipeline():
        fr = tonic_tf(tonic_events).astype(np.float32)  # (1, 2, H, W)
        return Representation(variant="paper", input_size=64).model_input(fr[:, 0] + fr[:, 1])

    rows = []
    ours = median_time(ours_pipeline, args.repeats)
    peer = median_time(tonic_pipeline, args.repeats)
    rows.append((f"augment + frame, 1 recording ({len(events)} ev)", ours, "tonic", peer))
    synth_t = median_time(lambda: synth.video_to_events(*synth.render_recording(sprite, cfg, rng)[:2], cfg.threshold,
                                                        rng, cfg.noise_hz_per_px), max(3, args.repeats // 3))
    rows.append(("synthesise 1 saccade recording", synth_t, "-", float("nan")))

    from eventclip.model.clip import EventClip

    recipe = load_recipe("default")
    model = EventClip.from_clip(recipe.model, seed=0)
    model.event_encoder.requires_grad_(True)
    opt = torch.optim.AdamW(model.event_encoder.parameters(), lr=1e-4)
    x_img, x_evt = torch.randn(32, 3, 64, 64), torch.randn(32, 3, 64, 64)
    text = torch.nn.functional.normalize(torch.randn(55, recipe.model["embed_dim"]), dim=-1)
    loss_cfg = LossConfig()

    def step():
        with torch.no_grad():
            img = model.encode_images(x_img)
        evt = torch.nn.functional.normalize(model.event_encoder(x_evt), dim=-1)
        loss, _ = total_loss(loss_cfg, img, evt, text, None, 14.3)
        opt.zero_grad()
        loss.backward()
        opt.step()

    rows.append(("stage-2 step, batch 32, default model", median_time(step, max(3, args.repeats // 3)), "-",
                 float("nan")))

    print(f"{'task':44s} {'ours (ms)':>10s} {'peer':>6s} {'peer (ms)':>10s} {'peer/ours':>10s}")
    for name, o, pname, p in rows:
        ratio = p / o if p == p else float("nan")
        print(f"{name:44s} {o * 1e3:10.2f} {pname:>6s} {p * 1e3:10.2f} {ratio:10.2f}")


if __name__ == "__main__":
    main()
