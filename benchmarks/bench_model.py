"""Model loading and heads: ours beside the peer way of doing the same thing, in one process.

Rows (medians over --repeats, ratio = ours / peer time; < 1 means ours is faster):

* package load: ``EventClip.from_pretrained`` (sha256-verified safetensors, meta-device build)
  vs open_clip's ``create_model(arch)`` + ``load_state_dict`` of a ``torch.save``'d state dict
  (random init, no integrity check).
* OpenAI TorchScript read: our allowlisted unpickler (no code runs) vs ``torch.jit.load`` +
  ``state_dict()`` (compiles the archive's code).
* zero-shot head: our numpy ``ZeroShotHead`` (top-5 of C classes) vs the same maths in torch.
* tokenizer: ``eventclip.model.tokenizer.ClipTokenizer`` vs ``open_clip.tokenize`` (101 N-Caltech
  prompts x 3 templates).

Random weights (no downloads). Never asserts a speed.

    OMP_NUM_THREADS=1 python benchmarks/bench_model.py [--arch ViT-B-32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import open_clip
    from open_clip.model import CLIP

    from eventclip.heads.prompts import load_prompts
    from eventclip.heads.zero_shot import ZeroShotHead
    from eventclip.model.clip import EventClip
    from eventclip.model.configs import resolve_config
    from eventclip.model.tokenizer import ClipTokenizer
    from eventclip.model.torchscript import read_torchscript_state

    torch.manual_seed(0)
    rows: list[tuple[str, float, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        name, cfg = resolve_config(args.arch)
        clip = CLIP(**cfg).eval()
        model = EventClip.from_clip(cfg, clip.state_dict(), with_image_encoder=False)
        model.save_pretrained(tmp / "pkg")
        torch.save(clip.state_dict(), tmp / "clip.pt")

        def peer_load() -> None:
            m = open_clip.create_model(name, pretrained=None)
            m.load_state_dict(torch.load(tmp / "clip.pt", weights_only=True))

        rows.append((f"package load ({name})", median_s(lambda: EventClip.from_pretrained(tmp / "pkg"), args.repeats),
                     "open_clip create_model + load_state_dict", median_s(peer_load, args.repeats)))

        half = CLIP(**cfg).eval().half()
        size = cfg["vision_cfg"]["image_size"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(half, (torch.randn(1, 3, size, size).half(), torch.zeros(1, 77, dtype=torch.long)),
                                     check_trace=False)
        traced.save(str(tmp / "openai.pt"))
        rows.append((f"TorchScript read, no code ({name} fp16)",
                     median_s(lambda: read_torchscript_state(tmp / "openai.pt"), args.repeats),
                     "torch.jit.load + state_dict",
                     median_s(lambda: torch.jit.load(str(tmp / "openai.pt")).state_dict(), args.repeats)))

    prompts = load_prompts(Path(__file__).resolve().parents[1] / "zero_shot_prompts" / "ncaltech101.yaml")
    texts = [p for c in prompts.classes for p in prompts.prompts_for(c)]
    rng = np.random.default_rng(0)
    text = rng.standard_normal((101, 512)).astype(np.float32)
    emb = rng.standard_normal((64, 512)).astype(np.float32)
    head = ZeroShotHead(text, prompts.labels, 100.0, top_k=5)
    t_text, t_emb = torch.from_numpy(head.text), torch.from_numpy(emb)

    def torch_head() -> None:
        e = torch.nn.functional.normalize(t_emb, dim=-1)
        p = (100.0 * e @ t_text.T).softmax(dim=-1)
        v, i = p.topk(5, dim=-1)
        [[(prompts.labels[j], float(x)) for x, j in zip(vr, ir, strict=True)]
         for vr, ir in zip(v.tolist(), i.tolist(), strict=True)]

    rows.append(("zero-shot head, 64 windows x 101 classes", median_s(lambda: head(emb), args.repeats * 20),
                 "same maths in torch", median_s(torch_head, args.repeats * 20)))
    ours = ClipTokenizer(open_clip.tokenizer.default_bpe())
    rows.append((f"tokenize {len(texts)} prompts (cold cache)",
                 median_s(lambda: ClipTokenizer(open_clip.tokenizer.default_bpe())(texts), args.repeats),
                 "open_clip.tokenize (warm)", median_s(lambda: open_clip.tokenize(texts), args.repeats)))
    rows.append((f"tokenize {len(texts)} prompts (warm)", median_s(lambda: ours(texts), args.repeats),
                 "open_clip.tokenize (warm)", median_s(lambda: open_clip.tokenize(texts), args.repeats)))

    print(f"{'ours':<46} {'median':>9}  {'peer':<42} {'median':>9}  {'ours/peer':>9}")
    for a, ta, b, tb in rows:
        print(f"{a:<46} {ta * 1e3:>7.1f}ms  {b:<42} {tb * 1e3:>7.1f}ms  {ta / tb:>9.2f}")


if __name__ == "__main__":
    main()
