"""Encoder backends side by side: PyTorch eager vs ONNX Runtime FP32 vs ONNX Runtime dynamic INT8.

Runs in one process on the same real frames (windows of a real recording), per model and batch
size, timing all backends in turns, and prints median latency, the speed-up over PyTorch, and INT8's
agreement with PyTorch (cosine, top-1 zero-shot label over a fixed vocabulary). Never asserts a speed.

ONNX Runtime runs twice per precision: on the plain opset-17 graph (``event_encoder.onnx``, what
TensorRT takes; "plain") and on the CPU graph the backend loads (``event_encoder.cpu.onnx``, fused
attention; "cpu"), with INT8 quantised from each, so the table shows what the CPU graph buys.

    python benchmarks/bench_encoder.py                      # ViT-B/32 (random weights) + default model
    python benchmarks/bench_encoder.py --models vitb32 --batches 1,8 --repeats 30 --threads 2
    python benchmarks/bench_encoder.py --gemm --threads 1   # FP32 GEMM ceiling: ORT MatMul vs torch

``--gemm`` times one FP32 GEMM of each ViT-B/32 shape (rows M = 50 tokens x batch) in ONNX Runtime
and in PyTorch: the encoder's FP32 speed-up cannot exceed these ratios, since GEMMs are ~90 % of it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "recordings"


def _medians_ms(fns: list, x: np.ndarray, repeats: int, warmup: int = 3) -> list[float]:
    """Median ms per call of each function, timed in turns (one call of each per round), so load
    changes on a shared machine hit every backend alike."""
    for fn in fns:
        for _ in range(warmup):
            fn(x)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn(x)
            out.append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) for t in times]


def _plain_session(path: Path, threads: int):
    """encode() over a bare ONNX Runtime session of ``path`` (the plain graphs the backend does not pick)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"frames": x})[0]


def _gemm_table(threads: int, repeats: int) -> None:
    """GFLOP/s of ORT ``MatMul`` (constant weight, as in the graphs) vs ``torch.nn.functional.linear``."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"{'GEMM (M x K x N)':<28}{'ORT GFLOP/s':>13}{'torch GFLOP/s':>15}{'ratio':>8}")
    for what, m, k, n in [("c_fc, batch 1", 50, 768, 3072), ("c_fc, batch 8", 400, 768, 3072),
                          ("c_proj, batch 8", 400, 3072, 768), ("qkv, batch 8", 400, 768, 2304)]:
        w = (rng.standard_normal((k, n)) * 0.02).astype(np.float32)
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [numpy_helper.from_array(w, "w")])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                       .SerializeToString(), opts, providers=["CPUExecutionProvider"])
        x = rng.standard_normal((m, k)).astype(np.float32)
        tw = torch.from_numpy(np.ascontiguousarray(w.T))
        t_ort, t_torch = _medians_ms([lambda v, s=session: s.run(None, {"x": v}),
                                      lambda v, w=tw: torch.nn.functional.linear(torch.from_numpy(v), w)], x, repeats)
        flop = 2 * m * k * n / 1e6
        print(f"{what + f' ({m}x{k}x{n})':<28}{flop / t_ort:>13.1f}{flop / t_torch:>15.1f}{t_torch / t_ort:>7.2f}x")


def _load(name: str):
    from eventclip.model.clip import EventClip

    if name == "vitb32":
        return "ViT-B/32 (random)", EventClip.from_clip("ViT-B-32", seed=0, with_image_encoder=False)
    if name == "default":
        from eventclip.data import default_model_path
        from eventclip.errors import EventclipError

        try:
            path = Path(default_model_path())
        except EventclipError:
            return None
        return f"default ({path.name})", EventClip.from_pretrained(path)
    raise SystemExit(f"unknown model {name!r}: use vitb32 or default")


def _recording(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from eventclip.data import sample_recording_path
    from eventclip.errors import EventclipError

    try:
        return Path(sample_recording_path())
    except EventclipError:
        return RECORDINGS / "prophesee_evt2_sparklers_gen3_640x480.raw"


def _vocabulary(rec: Path) -> list[str]:
    """The sample's ground-truth texts when frames come from the bundled sample, else a fixed vocabulary."""
    import json

    from eventclip.exporters.parity import PARITY_PROMPTS

    labels = rec.with_suffix(".json")
    if labels.is_file():
        return sorted({seg["text"] for seg in json.loads(labels.read_text())["segments"]})
    return list(PARITY_PROMPTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vitb32,default")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for torch and ONNX Runtime")
    parser.add_argument("--recording", help="real recording for frames (default: bundled sample)")
    parser.add_argument("--gemm", action="store_true", help="only the FP32 GEMM table (ORT vs torch), then exit")
    args = parser.parse_args()
    if args.gemm:
        _gemm_table(args.threads, max(args.repeats, 30))
        return

    import onnxruntime
    import torch

    from eventclip.exporters.onnx import export_onnx
    from eventclip.exporters.parity import compare, recording_windows
    from eventclip.exporters.quantize import quantize_dynamic_int8
    from eventclip.runtime.onnxruntime import OnnxRuntimeBackend

    torch.set_num_threads(args.threads)
    rec = _recording(args.recording)
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
          f"frames from {rec.name}")
    header = (f"{'model':<24}{'batch':>6}{'torch ms':>10}{'fp32 plain':>11}{'fp32 cpu':>10}{'int8 plain':>11}"
              f"{'int8 cpu':>10}{'fp32 x':>8}{'int8 x':>8}")
    rows, notes = [header, "-" * len(header)], []
    for name in args.models.split(","):
        loaded = _load(name)
        if loaded is None:
            notes.append(f"{name}: skipped (no default model package installed yet)")
            continue
        label, model = loaded
        model.eval()
        with tempfile.TemporaryDirectory() as tmp:
            result = export_onnx(model, Path(tmp) / "bundle", int8=True, recording=rec)
            fp32 = OnnxRuntimeBackend(threads=args.threads)
            fp32.load(result.root)
            int8 = OnnxRuntimeBackend(precision="int8", threads=args.threads)
            int8.load(result.root)
            plain_int8 = quantize_dynamic_int8(result.root / "event_encoder.onnx", Path(tmp) / "plain.int8.onnx")
            plain = [_plain_session(path, args.threads) for path in (result.root / "event_encoder.onnx", plain_int8)]
            rep = model.representation.model_copy(update={"input_size": model.input_size})
            windows, geometry = recording_windows(rec, rep.window_us, max_windows=64)
            frames = rep(windows, geometry)

            def torch_encode(x, model=model):
                with torch.no_grad():
                    return model.encode_frames(torch.from_numpy(x))

            for b in (int(v) for v in args.batches.split(",")):
                x = np.ascontiguousarray(np.resize(frames, (b, *frames.shape[1:])))
                fns = [torch_encode, plain[0], fp32.encode, plain[1], int8.encode]
                t_torch, t_fp32p, t_fp32, t_int8p, t_int8 = _medians_ms(fns, x, args.repeats)
                rows.append(f"{label:<24}{b:>6}{t_torch:>10.1f}{t_fp32p:>11.1f}{t_fp32:>10.1f}{t_int8p:>11.1f}"
                            f"{t_int8:>10.1f}{t_torch / t_fp32:>7.2f}x{t_torch / t_int8:>7.2f}x")
            vocab = _vocabulary(rec)
            text = fp32.encode_text(vocab)
            with torch.no_grad():
                ref = model.encode_frames(torch.from_numpy(frames)).numpy()
            agree = compare(ref, int8.encode(frames), text, name=label, precision="int8")
            notes.append(f"{label}: INT8 vs torch on {agree.n} real windows: top-1 agreement {agree.top1:.1%} "
                         f"({len(vocab)} prompts), cosine min {agree.min_cosine:.4f} mean {agree.mean_cosine:.4f}")
    print("\n".join(rows))
    print("fp32 x, int8 x: torch ms / 'cpu' ms (the graphs the ONNX Runtime backend loads on CPUs)")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
