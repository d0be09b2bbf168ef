"""GPU check in one call: TensorRT FP16 + INT8 engines, parity vs ONNX Runtime, latency, zero-copy frames.

Run by ``benchmarks/gpu_check.sh`` on a CUDA machine (an H200 when one is lent). For each model
(random-weight ViT-B/32, and the shipped default model when installed):

1. export ONNX (FP32 + FP16 graphs; parity vs PyTorch on real frames, on the CPU);
2. build FP16 and INT8 (Q/DQ calibrated on real recordings) engines, batch profile 1,8,32;
3. parity of each engine vs ONNX Runtime FP32 on real frames (max |Δ|, cosine, top-1);
4. latency at batch 1/8/32: median of >= 100 runs after warm-up, timed with CUDA events, for
   TensorRT FP16/INT8 and, as the in-process peer, PyTorch eager FP16 on the same GPU;
5. zero-copy path: events -> CUDA frame accumulation (torch) -> model input on the device ->
   TensorRT ``encode_device``, compared with the CPU path (numba frames -> ONNX Runtime).

Without tensorrt it still runs the PyTorch CUDA timings and says TensorRT was skipped and why.
Writes ``gpu_check.json`` into $OUT (or the working folder) besides printing a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [os.environ.get("EVENTCLIP_RECORDINGS", ""), ROOT.parent / "shared" / "data" / "recordings",
               ROOT / "shared" / "data" / "recordings"]
RECORDINGS = next((Path(c) for c in _CANDIDATES if c and (Path(c) / "README.md").is_file()), None)
SAMPLE = ROOT / "src" / "eventclip" / "data" / "sample" / "sample.raw"
if RECORDINGS is not None:
    CALIB = [RECORDINGS / n for n in ("prophesee_evt2_sparklers_gen3_640x480.raw",
                                      "prophesee_evt3_driving_gen41_1280x720.raw",
                                      "inivation_dvxplorer_320x240.aedat4")]
    TEST = RECORDINGS / "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"
else:  # a bare copy of the repository: the bundled sample (a real EVT 3.0 file) serves for both
    CALIB, TEST = [SAMPLE], SAMPLE


def cuda_median_ms(fn, repeats: int, warmup: int = 20) -> float:
    """Median of ``repeats`` runs of ``fn`` timed with CUDA events (each run synchronised)."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def models(names: list[str]):
    from eventclip.model.clip import EventClip

    for name in names:
        if name == "vitb32":
            yield "ViT-B/32 (random)", EventClip.from_clip("ViT-B-32", seed=0, with_image_encoder=False)
        elif name == "default":
            try:
                from eventclip.data import default_model_path

                path = Path(default_model_path())
                yield f"default ({path.name})", EventClip.from_pretrained(path)
            except Exception as exc:  # absent before the training helper ships it
                print(f"default model: skipped ({exc})")


def check_model(label, model, work: Path, batches: list[int], repeats: int, trt_ok: bool, log: dict) -> list[str]:
    import torch

    from eventclip.exporters.onnx import export_onnx
    from eventclip.exporters.parity import recording_windows

    rows = []
    entry: dict = log.setdefault(label, {})
    t0 = time.perf_counter()
    result = export_onnx(model, work, fp16=True, recording=TEST)
    entry["onnx_parity"] = [r.as_dict() for r in result.reports]
    entry["export_s"] = round(time.perf_counter() - t0, 1)
    print(f"[{label}] ONNX export + CPU parity in {entry['export_s']} s")
    rep = model.representation.model_copy(update={"input_size": model.input_size})
    windows, geometry = recording_windows(TEST, rep.window_us, max_windows=32)
    frames = rep(windows, geometry)

    enc16 = copy.deepcopy(model.event_encoder).cuda().half().eval()
    for b in batches:
        x = torch.from_numpy(np.resize(frames, (b, *frames.shape[1:]))).cuda().half()
        with torch.no_grad():
            ms = cuda_median_ms(lambda x=x: enc16(x), repeats)
        entry.setdefault("latency_ms", {}).setdefault("torch_fp16", {})[b] = ms
        rows.append(f"{label:<22}{'torch eager fp16':<20}{b:>6}{ms:>10.3f}")
    if not trt_ok:
        return rows

    from eventclip.exporters.tensorrt import build_engine, check_engine
    from eventclip.runtime.tensorrt import TensorRTBackend

    for precision in ("fp16", "int8"):
        try:
            t0 = time.perf_counter()
            build = build_engine(result.root, precision=precision, batch=(1, 8, 32),
                                 calib=CALIB if precision == "int8" else ())
            report = check_engine(build.engine, TEST, precision)
            entry[f"trt_{precision}"] = {"build_s": round(time.perf_counter() - t0, 1), "parity": report.as_dict(),
                                         "sidecar": build.sidecar}
            print(f"[{label}] TensorRT {precision}: built+checked in {entry[f'trt_{precision}']['build_s']} s; "
                  f"{report}")
            backend = TensorRTBackend(precision=precision)
            backend.load(result.root)
            for b in batches:
                x = torch.from_numpy(np.resize(frames, (b, *frames.shape[1:]))).cuda()
                ms = cuda_median_ms(lambda x=x, backend=backend: backend.encode_device(x), repeats)
                entry.setdefault("latency_ms", {}).setdefault(f"trt_{precision}", {})[b] = ms
                rows.append(f"{label:<22}{'TensorRT ' + precision:<20}{b:>6}{ms:>10.3f}")
            if precision == "fp16":
                entry["zero_copy"] = zero_copy_check(backend, rep, windows, geometry, result.root)
                print(f"[{label}] zero-copy CUDA frames -> TensorRT: {entry['zero_copy']}")
        except Exception as exc:  # keep going: one failing precision must not hide the others' figures
            entry[f"trt_{precision}"] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
            rows.append(f"{label:<22}{'TensorRT ' + precision:<20}{'':>6}{'FAILED':>10}")
    return rows


def zero_copy_check(backend, rep, windows, geometry, bundle) -> dict:
    """Events on the GPU -> counts/frames/model input on the GPU -> engine; vs numba frames -> ORT FP32."""

    from eventclip.frames.accumulate import events_to_torch, stack_windows
    from eventclip.runtime.onnxruntime import OnnxRuntimeBackend

    events, offsets = stack_windows(windows)
    dev_events = events_to_torch(events, "cuda")
    frames = rep.frames_torch(dev_events, geometry, offsets, device="cuda")
    x = rep.model_input_torch(frames)
    ptr = x.data_ptr()
    y = backend.encode_device(x)
    ort = OnnxRuntimeBackend(providers=["CPUExecutionProvider"])
    ort.load(bundle)
    ref = ort.encode(rep(windows, geometry))
    cos = (y.cpu().numpy() * ref).sum(1)
    return {"n": len(windows), "input_stayed_on_device": bool(x.is_cuda and x.data_ptr() == ptr),
            "min_cosine_vs_cpu_path": float(cos.min())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vitb32,default")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    import torch

    if not TEST.is_file():
        print(f"no real recording found (looked in {[str(c) for c in _CANDIDATES if c]} and {SAMPLE})")
        return 1
    print(f"frames from {TEST}; INT8 calibration on {[c.name for c in CALIB]}")
    if not torch.cuda.is_available():
        print("no CUDA GPU visible: nothing to check here (run on a GPU machine)")
        return 1
    try:
        import tensorrt

        trt_ok, trt_note = True, f"TensorRT {tensorrt.__version__}"
    except ImportError as exc:
        trt_ok, trt_note = False, f"TensorRT skipped: {exc}"
    print(f"{torch.cuda.get_device_name(0)} (sm {'.'.join(map(str, torch.cuda.get_device_capability(0)))}), "
          f"torch {torch.__version__}, {trt_note}")
    batches = [int(b) for b in args.batches.split(",")]
    log: dict = {"gpu": torch.cuda.get_device_name(0), "tensorrt": trt_note}
    rows = [f"{'model':<22}{'backend':<20}{'batch':>6}{'median ms':>10}", "-" * 58]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, model) in enumerate(models(args.models.split(","))):
            try:
                rows += check_model(label, model, Path(tmp) / f"m{i}", batches, args.repeats, trt_ok, log)
            except Exception as exc:
                log.setdefault(label, {})["error"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
    print("\n".join(rows))
    out = Path(os.environ.get("OUT", "."))
    (out / "gpu_check.json").write_text(json.dumps(log, indent=2, default=str))
    print(f"details: {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
