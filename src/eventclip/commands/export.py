"""``eventclip export onnx|tensorrt``: deployable graphs and engines, each ending in a parity check."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export`` with its ``onnx`` and ``tensorrt`` subcommands."""
    parser = subparsers.add_parser("export", help="export a model package to ONNX / TensorRT (with parity checks)")
    sub = parser.add_subparsers(dest="target", metavar="TARGET")
    sub.required = True

    onnx = sub.add_parser("onnx", help="event + text encoders as ONNX (optionally FP16, INT8, fused head)")
    onnx.add_argument("package", type=Path, help="model package folder (holds model.json)")
    onnx.add_argument("--out", type=Path, help="bundle folder (default: PACKAGE/onnx)")
    onnx.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    onnx.add_argument("--fp16", action="store_true", help="also write event_encoder.fp16.onnx (for GPUs/TensorRT)")
    onnx.add_argument("--int8", action="store_true", help="also write event_encoder.int8.onnx (ORT dynamic INT8, CPUs)")
    onnx.add_argument("--fuse-head", action="store_true",
                      help="also write fused.onnx: raw counts -> embeddings + logits")
    onnx.add_argument("--prompts", type=Path, help="prompts (YAML or one per line): fused head labels and top-1 check")
    onnx.add_argument("--recording", type=Path, help="real recording for the parity check (default: bundled sample)")
    onnx.add_argument("--no-check", action="store_true", help="skip the parity check (not recommended)")
    onnx.add_argument("--no-cpu-graph", action="store_true",
                      help="leave out event_encoder.cpu.onnx (the ONNX Runtime CPU form; saves one FP32 copy of the "
                           "encoder on disk, e.g. for a TensorRT-only deployment)")
    onnx.set_defaults(func=_run_onnx)

    trt = sub.add_parser("tensorrt", help="TensorRT engine from an ONNX bundle (needs a GPU and tensorrt)")
    trt.add_argument("onnx", type=Path, help="event_encoder.onnx of a bundle, the bundle folder or the package")
    precision = trt.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="FP16 engine from event_encoder.fp16.onnx")
    precision.add_argument("--int8", action="store_true", help="INT8 engine from a Q/DQ graph calibrated on --calib")
    trt.add_argument("--calib", type=Path, nargs="+", default=[], help="real recordings for INT8 calibration")
    trt.add_argument("--batch", default="1,8,32", help="optimisation profile min,opt,max batch (default 1,8,32)")
    trt.add_argument("--out", type=Path, help="engine file (default: BUNDLE/engines/event_encoder.<precision>.engine)")
    trt.add_argument("--recording", type=Path, help="real recording for the parity check (default: first --calib "
                     "file, else the bundled sample)")
    trt.add_argument("--device", type=int, default=0, help="CUDA device index")
    trt.set_defaults(func=_run_tensorrt)


def _run_onnx(args: argparse.Namespace) -> int:
    from eventclip.exporters.onnx import export_onnx

    result = export_onnx(args.package, args.out, opset=args.opset, fp16=args.fp16, int8=args.int8,
                         fuse_head=args.fuse_head, prompts=args.prompts, recording=args.recording,
                         check=not args.no_check, cpu_graph=not args.no_cpu_graph)
    for key, info in sorted(result.manifest["files"].items()):
        print(f"wrote {result.root / info['path']} ({key})")
    for report in result.reports:
        print(f"parity ok: {report}")
    return 0


def _run_tensorrt(args: argparse.Namespace) -> int:
    from eventclip.exporters.onnx import default_recording
    from eventclip.exporters.tensorrt import build_engine, check_engine, parse_batch

    precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    build = build_engine(args.onnx, precision=precision, calib=args.calib, batch=parse_batch(args.batch),
                         out=args.out, device=args.device)
    print(f"wrote {build.engine} in {build.seconds:.1f} s ({build.sidecar['gpu_name']}, "
          f"TensorRT {build.sidecar['tensorrt_version']}, {precision})")
    recording = args.recording or (args.calib[0] if args.calib else default_recording())
    print(f"parity ok: {check_engine(build.engine, recording, precision, args.device)}")
    return 0
