"""eventclipd end to end on a GPU: ViT-B/32 (random weights) through the whole daemon, TensorRT FP16
beside PyTorch on CUDA, with the paced synthetic camera and the measurements of ``bench_daemon.py``.

Run by ``benchmarks/gpu_check.sh`` (a GPU machine is lent for minutes, so one script does every GPU
check). Steps: save a ViT-B/32 package, export ONNX (FP32 + FP16; parity is gpu_check.py's job),
build the FP16 engine (batch profile 1,8,32), then for each backend replay ``--rate`` Mev/s for
``--seconds`` through reader, windowing, frames, encoder, heads and a loopback ZeroMQ subscriber.
Prints one table row per backend (achieved rate, reader loss, drops, close->publish p50/p99) and
writes ``gpu_daemon.json`` into $OUT. Never asserts a speed.

    python benchmarks/gpu_daemon.py [--backends tensorrt,torch] [--rate 50] [--seconds 15] [--model vitb32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_daemon  # noqa: E402  (the benchmark next to this file)


def make_package(model: str, folder: Path, engine: bool) -> Path:
    """A package with its ONNX bundle and, when ``engine``, a TensorRT FP16 engine built for this GPU."""
    from eventclip.exporters.onnx import export_onnx
    from eventclip.model.clip import EventClip

    if model == "vitb32":
        pkg = EventClip.from_clip("ViT-B-32", seed=0, with_image_encoder=False).save_pretrained(folder / "vitb32")
    else:
        from eventclip.data import default_model_path

        pkg = EventClip.from_pretrained(default_model_path()).save_pretrained(folder / "default")
    result = export_onnx(pkg, fp16=True, check=False, cpu_graph=False)
    if engine:
        from eventclip.exporters.tensorrt import build_engine

        build_engine(result.root, precision="fp16", batch=(1, 8, 32))
    return pkg


def run(pkg: Path, backends: list[str], rate_mevs: float, seconds: float, window_us: int = 50_000) -> list[dict]:
    """One daemon run per backend; a failing backend is reported and the others still run."""
    prompts = pkg.parent / "prompts.yaml"
    prompts.write_text(bench_daemon.PROMPTS)
    out = []
    for backend in backends:
        try:
            r = bench_daemon.run_daemon(pkg, prompts, backend, rate_mevs * 1e6, seconds, window_us, 1000)
            r.pop("rss", None)
            out.append({"backend_requested": backend, **r})
        except Exception as exc:  # noqa: BLE001 - one backend failing must not hide the others' figures
            traceback.print_exc()
            out.append({"backend_requested": backend, "error": f"{type(exc).__name__}: {exc}"})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="tensorrt,torch")
    ap.add_argument("--rate", type=float, default=50.0, help="input rate, Mev/s")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--model", choices=("vitb32", "default"), default="vitb32")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU visible: daemon end to end on a GPU skipped")
        return 0
    try:
        import tensorrt  # noqa: F401

        trt_ok = True
    except ImportError:
        trt_ok = False
    backends = [b for b in args.backends.split(",") if b != "tensorrt" or trt_ok]
    print(f"daemon end to end: {args.model}, {args.rate:g} Mev/s for {args.seconds:g} s per backend on "
          f"{torch.cuda.get_device_name(0)}; backends {backends}{'' if trt_ok else ' (tensorrt not installed)'}")
    with tempfile.TemporaryDirectory() as tmp:
        pkg = make_package(args.model, Path(tmp), engine=trt_ok and "tensorrt" in backends)
        results = run(pkg, backends, args.rate, args.seconds)
    print("| backend | achieved Mev/s | reader loss | window drops | windows/s | p50 ms | p99 ms | gapless |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['backend_requested']} | failed: {r['error']} |")
            continue
        print(f"| {r['backend']} | {r['rate_in'] / 1e6:.1f} | {r['reader_lost']} | {r['dropped']} | "
              f"{r['windows_s']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['gapless']} |")
    out = Path(os.environ.get("OUT", "."))
    (out / "gpu_daemon.json").write_text(json.dumps(results, indent=2, default=str))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
