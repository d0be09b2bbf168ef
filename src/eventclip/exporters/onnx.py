"""Export a model package to ONNX: event encoder, text encoder, optional fused count-frame graph.

Why: the daemon and edge devices run ONNX Runtime or TensorRT, not PyTorch. The export writes a
self-contained bundle (see :mod:`eventclip.runtime.base`) and ends with a parity check against
PyTorch on frames from a real recording (:mod:`eventclip.exporters.parity`), so a bundle that
exists is a bundle that agrees with the model it came from.

Graphs (all opset >= 17, so LayerNorm stays one ``LayerNormalization`` node, which TensorRT keeps
in FP32 accumulation for FP16 engines):

* ``event_encoder.onnx``: ``frames`` (B,3,S,S) float32 -> ``embeddings`` (B,D) L2-normalised; B dynamic.
  Standard ops only: the graph for TensorRT, CUDA and any other runtime.
* ``event_encoder.cpu.onnx`` (``cpu_graph``, on by default): same I/O, attention fused into ONNX
  Runtime's contrib ``MultiHeadAttention`` and the patch embedding as a MatMul
  (:mod:`eventclip.exporters.ort_cpu`); ONNX Runtime only, chosen by its CPU backend.
* ``event_encoder.int8.onnx`` (``--int8``): dynamic INT8 of the CPU graph (of the plain one when
  ``cpu_graph=False``).
* ``event_encoder.fp16.onnx`` (``--fp16``): same I/O in float32, weights and math in FP16 except
  LayerNorm, kept in FP32 (a strongly typed TensorRT build takes precisions from the graph).
* ``text_encoder.onnx``: ``tokens`` (N,L) int64 -> ``embeddings`` (N,D) L2-normalised; N dynamic.
* ``fused.onnx`` (``--fuse-head``): ``counts`` (B,2,H,W) float32 per-polarity event counts (the
  accumulator's output, sensor/ROI size) -> ``embeddings`` and ``logits`` (B,K) = exp(logit_scale)
  × cosine against a baked (K,D) text matrix of the given prompts.

The legacy TorchScript exporter is used (``dynamo=False``): it traces open_clip's attention as
plain MatMul/Softmax nodes once PyTorch's fused multi-head-attention fast path is switched off.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eventclip.errors import EventclipError
from eventclip.exporters.parity import PARITY_PROMPTS, ParityError, ParityReport, compare, recording_windows
from eventclip.runtime.base import BUNDLE_DIR, MANIFEST, VOCAB_NAME

if TYPE_CHECKING:
    import torch

    from eventclip.model.clip import EventClip

log = logging.getLogger(__name__)

MIN_OPSET = 17


class ExportError(EventclipError):
    """The model cannot be exported as asked; the message says which option or file is wrong."""


@dataclass
class OnnxExport:
    """What an export wrote: the bundle folder, its manifest, and the parity reports it passed."""

    root: Path
    manifest: dict
    reports: list[ParityReport] = field(default_factory=list)


@contextlib.contextmanager
def no_fused_attention() -> Iterator[None]:
    """Switch off PyTorch's fused MHA fast path (``_native_multi_head_attention``, no ONNX symbolic)."""
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _modules() -> dict[str, type]:
    """The wrapper modules, defined lazily so importing this file does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class EventEncoderGraph(nn.Module):
        """frames -> normalised embeddings; ``dtype`` is the compute precision inside the graph."""

        def __init__(self, encoder: nn.Module, dtype: torch.dtype = torch.float32) -> None:
            super().__init__()
            self.encoder, self.dtype = encoder, dtype

        def forward(self, frames: torch.Tensor) -> torch.Tensor:
            y = self.encoder(frames.to(self.dtype)).to(torch.float32)
            return F.normalize(y, dim=-1)

    class TextEncoderGraph(nn.Module):
        def __init__(self, text: nn.Module) -> None:
            super().__init__()
            self.text = text

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.text(tokens), dim=-1)

    class FusedGraph(nn.Module):
        """Raw per-polarity counts (B,2,H,W) -> frames -> model input -> embeddings and zero-shot logits.

        H, W are the model's grid when the representation counts there (the caller counts on
        ``Representation.grid``), else the sensor's. The resize matrices are precomputed for that
        fixed size (tracing sees tensor shapes, not ints); the steps are those of
        ``Representation.model_input_torch``, and parity checks them.
        """

        def __init__(self, encoder: nn.Module, representation: Any, height: int, width: int,
                     text: np.ndarray, scale: float) -> None:
            from eventclip.frames.preprocess import resize_matrices

            super().__init__()
            self.encoder, self.variant = encoder, representation.variant
            self.clip_nonzero_mean = representation.clip_nonzero_mean
            ry, rx = resize_matrices(height, width, representation.input_size, representation.fit)
            self.register_buffer("ry", torch.from_numpy(np.asarray(ry, dtype=np.float32)))
            self.register_buffer("rxt", torch.from_numpy(np.ascontiguousarray(np.asarray(rx, dtype=np.float32).T)))
            self.register_buffer("mean", torch.tensor(representation.mean, dtype=torch.float32)[None, :, None, None])
            self.register_buffer("std", torch.tensor(representation.std, dtype=torch.float32)[None, :, None, None])
            self.register_buffer("text", torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32)))
            self.scale = float(scale)

        def forward(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            from eventclip.frames.accumulate import normalise_counts_torch

            f = normalise_counts_torch(counts, self.variant, clip_nonzero_mean=self.clip_nonzero_mean)
            f = f if f.dim() == 4 else f[:, None]
            resized = self.ry @ (f @ self.rxt)
            if resized.shape[1] == 1:
                rgb = resized.expand(-1, 3, -1, -1)
            else:
                rgb = torch.cat([resized[:, 1:2], resized[:, 0:1], (resized[:, 0:1] + resized[:, 1:2]) * 0.5], dim=1)
            emb = F.normalize(self.encoder((rgb - self.mean) / self.std), dim=-1)
            return emb, self.scale * emb @ self.text.T

    class Fp32LayerNorm(nn.Module):
        """LayerNorm computed in FP32 inside an FP16 graph (FP16 variance overflows on large activations)."""

        def __init__(self, ln: nn.LayerNorm) -> None:
            super().__init__()
            self.shape, self.eps = tuple(ln.normalized_shape), ln.eps
            self.register_buffer("weight", ln.weight.detach().float().clone())
            self.register_buffer("bias", ln.bias.detach().float().clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(x.float(), self.shape, self.weight, self.bias, self.eps).to(x.dtype)

    return {"event": EventEncoderGraph, "text": TextEncoderGraph, "fused": FusedGraph, "ln32": Fp32LayerNorm}


def _fp16_copy(encoder: torch.nn.Module) -> torch.nn.Module:
    """A half-precision copy of ``encoder`` whose LayerNorms stay FP32."""
    import copy

    from torch import nn

    ln32 = _modules()["ln32"]
    enc = copy.deepcopy(encoder).float()
    lns = [(name, mod) for name, mod in enc.named_modules() if isinstance(mod, nn.LayerNorm)]
    replacements = {name: ln32(mod) for name, mod in lns}
    enc = enc.half()
    for name, new in replacements.items():
        parent_name, _, child = name.rpartition(".")
        parent = enc.get_submodule(parent_name) if parent_name else enc
        setattr(parent, child, new)
    return enc


def _export(module: torch.nn.Module, example: Any, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]], opset: int, contrib: bool = False) -> None:
    """Trace ``module`` to ``path`` and check the graph (``contrib``: it holds com.microsoft ops, opset 1)."""
    import warnings

    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with no_fused_attention(), torch.no_grad(), warnings.catch_warnings(), _native_stderr_without(EXPECTED_NATIVE):
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # legacy exporter is chosen on purpose
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # text pooling gathers at argmax(tokens): indices are never negative, so the warned case cannot occur
        warnings.filterwarnings("ignore", message="Exporting aten::index operator of advanced indexing")
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=opset, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True,
                          custom_opsets={"com.microsoft": 1} if contrib else None)
    onnx.checker.check_model(str(path))


EXPECTED_NATIVE = ("The shape inference of com.microsoft::MultiHeadAttention type is missing",)
"""Warnings torch's C++ exporter prints (not Python warnings) that say nothing here: the CPU graph's
attention is ONNX Runtime's MultiHeadAttention contrib op, which torch has no shape rule for, and
ONNX Runtime infers its shapes itself (the parity check runs the graph)."""


@contextlib.contextmanager
def _native_stderr_without(expected: Sequence[str]) -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 meanwhile, and write it back without
    the lines holding one of ``expected``: those are silenced, every other warning is kept."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(text in line for text in expected)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _sha256(path: Path) -> str:
    from eventclip.model.card import sha256_file

    return sha256_file(path)


def _representation(model: EventClip) -> Any:
    rep = model.representation
    if rep.input_size != model.input_size:
        rep = rep.model_copy(update={"input_size": model.input_size})
    return rep


def default_recording() -> Path:
    """The bundled sample recording used for parity when the caller names none."""
    from eventclip.data import sample_recording_path

    try:
        return Path(sample_recording_path())
    except EventclipError as exc:
        raise ExportError(f"{exc}. Or pass a real recording for the parity check (--recording FILE)") from exc


def _ort(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # ORT's layout optimisations (level ALL) crash on FP16 graphs on CPU (onnxruntime 1.32); EXTENDED is safe.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def text_matrix(model: EventClip, prompts: str | Path | Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    """(labels, (K,D) unit text matrix) for the top-1 check and the fused head.

    A YAML prompts file (``eventclip.heads.prompts`` schema) gives its class names and the
    template-ensembled class embeddings, exactly as ``eventclip classify`` uses them; a list of
    strings or a text file (one prompt per line) gives one row per prompt; None gives
    :data:`~eventclip.exporters.parity.PARITY_PROMPTS`.
    """
    if isinstance(prompts, (str, Path)) and Path(prompts).suffix in (".yaml", ".yml"):
        from eventclip.heads.prompts import embed_prompts, load_prompts

        emb = embed_prompts(load_prompts(prompts), model.encode_text_numpy)
        return list(emb.labels), emb.classes
    if prompts is None:
        labels = list(PARITY_PROMPTS)
    elif isinstance(prompts, (str, Path)):
        path = Path(prompts)
        if not path.is_file():
            raise ExportError(f"prompts file {path} does not exist")
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not labels:
            raise ExportError(f"prompts file {path} holds no prompt (one per line expected)")
    else:
        labels = [str(p) for p in prompts]
    return labels, model.encode_text_numpy(labels)


def export_onnx(
    package: str | Path | EventClip,
    out: str | Path | None = None,
    *,
    opset: int = MIN_OPSET,
    fp16: bool = False,
    int8: bool = False,
    fuse_head: bool = False,
    prompts: str | Path | Sequence[str] | None = None,
    recording: str | Path | None = None,
    check: bool = True,
    parity_windows: int = 16,
    cpu_graph: bool = True,
) -> OnnxExport:
    """Export the package at ``package`` into ``out`` (default ``<package>/onnx``) and check parity.

    ``package`` may also be an in-memory ``EventClip`` (then ``out`` is required).

    ``cpu_graph`` adds ``event_encoder.cpu.onnx``, the ONNX Runtime CPU form (fused attention).
    ``int8`` adds ONNX Runtime dynamic INT8 (``event_encoder.int8.onnx``, for CPUs), quantised from
    the CPU form when there is one. ``fuse_head``
    bakes the text embeddings of ``prompts`` into ``fused.onnx``. ``recording`` supplies the real
    frames for parity (default: the bundled sample), cut into up to ``parity_windows`` windows.
    ``check=False`` skips parity (not recommended).
    Raises ParityError past the tolerances in :data:`eventclip.exporters.parity.TOLERANCES`.
    """
    import onnx
    import torch

    from eventclip.model.clip import EventClip

    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset} is too old: opset >= {MIN_OPSET} keeps LayerNorm as one node")
    if fuse_head and prompts is None:
        raise ExportError("--fuse-head needs --prompts (a prompts YAML or a text file, one prompt per line)")
    if isinstance(package, EventClip):
        if out is None:
            raise ExportError("exporting an in-memory model needs an output folder (out=...)")
        model = package.eval()
    else:
        model = EventClip.from_pretrained(Path(package)).eval()
    root = Path(out) if out is not None else Path(package) / BUNDLE_DIR
    root.mkdir(parents=True, exist_ok=True)
    graphs = _modules()
    s = model.input_size
    files: dict[str, dict[str, str]] = {}

    def record(key: str, name: str, precision: str, target: str = "onnx") -> Path:
        files[key] = {"path": name, "precision": precision, "target": target}
        return root / name

    frames_axes = {"frames": {0: "batch"}, "embeddings": {0: "batch"}}
    example = torch.zeros(2, 3, s, s)
    from eventclip.progress import bar

    steps = bar(total=2 + fp16 + cpu_graph + int8 + fuse_head + check, unit="step")

    running: list[str] = []

    def stage(name: str) -> None:
        """Show the step now running (the bar advances as the next one starts)."""
        if running:
            steps.update()
        running[:] = [name]
        steps.set_description(f"export: {name}")

    stage("event encoder")
    _export(graphs["event"](model.event_encoder), example, record("event_encoder.fp32", "event_encoder.onnx", "fp32"),
            ["frames"], ["embeddings"], frames_axes, opset)
    stage("text encoder")
    tokens = model.tokenize(["a photo of an event camera", "x"])
    _export(graphs["text"](model.text_encoder), tokens, record("text_encoder", "text_encoder.onnx", "fp32"),
            ["tokens"], ["embeddings"], {"tokens": {0: "batch"}, "embeddings": {0: "batch"}}, opset)
    if fp16:
        stage("FP16 event encoder")
        _export(graphs["event"](_fp16_copy(model.event_encoder), torch.float16), example,
                record("event_encoder.fp16", "event_encoder.fp16.onnx", "fp16"), ["frames"], ["embeddings"],
                frames_axes, opset)
    rewritten: dict[str, int] = {}
    if cpu_graph:
        stage("ONNX Runtime CPU graph")
        from eventclip.exporters.ort_cpu import cpu_encoder

        encoder, rewritten = cpu_encoder(model.event_encoder, s)
        _export(graphs["event"](encoder), example, record("event_encoder.cpu", "event_encoder.cpu.onnx", "fp32",
                                                          "onnxruntime-cpu"),
                ["frames"], ["embeddings"], frames_axes, opset, contrib=bool(rewritten["attention"]))
    if int8:
        stage("INT8 quantisation")
        from eventclip.exporters.quantize import quantize_dynamic_int8

        src = root / files["event_encoder.cpu" if cpu_graph else "event_encoder.fp32"]["path"]
        quantize_dynamic_int8(src, record("event_encoder.int8", "event_encoder.int8.onnx", "int8", "onnxruntime-cpu"))
    labels, text = text_matrix(model, prompts)
    rep = _representation(model)
    windows, geometry = (None, None)
    if check or fuse_head:
        windows, geometry = recording_windows(recording or default_recording(), rep.window_us, parity_windows)
    fused_info: dict[str, Any] = {}
    if fuse_head:
        stage("fused head")
        if rep.clip_percentile is not None or rep.roi is not None:
            raise ExportError("--fuse-head supports representations without clip_percentile and roi; crop and "
                              "clip before counting, or export without --fuse-head")
        grid = rep.grid(geometry)
        rows, cols = grid.shape if grid is not None else geometry.shape
        fused = graphs["fused"](model.event_encoder, rep, rows, cols, text, model.card.logit_multiplier)
        _export(fused, torch.zeros(2, 2, rows, cols), record("fused", "fused.onnx", "fp32"), ["counts"],
                ["embeddings", "logits"], {"counts": {0: "batch"}, "embeddings": {0: "batch"}, "logits": {0: "batch"}},
                opset)
        fused_info = {"geometry": [geometry.width, geometry.height], "counts_shape": [2, rows, cols],
                      "count_at": rep.count_at, "labels": labels, "variant": rep.variant}

    vocab_src = Path(model.tokenizer_path)
    if not vocab_src.is_file():
        raise ExportError(f"{vocab_src} is missing: the package must carry its BPE vocabulary")
    shutil.copyfile(vocab_src, root / VOCAB_NAME)
    manifest = {
        "format": 1,
        "model_hash": model.card.model_hash or model.model_hash,
        "architecture": model.card.architecture,
        "input_size": s,
        "embed_dim": model.embed_dim,
        "context_length": model.card.context_length,
        "logit_scale": model.card.logit_scale,
        "representation": rep.model_dump(mode="json"),
        "opset": opset,
        "files": {k: dict(v, sha256=_sha256(root / v["path"])) for k, v in files.items()},
        "vocab": VOCAB_NAME,
        "fused": fused_info,
        "cpu_graph": rewritten,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
    }
    reports: list[ParityReport] = []
    if check:
        stage("parity check")
        reports = check_bundle(model, root, files, windows, geometry, rep, text)
        manifest["parity"] = {
            "recording": str(recording or default_recording()),
            "reports": [r.as_dict() for r in reports],
        }
    steps.update()
    steps.close()
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return OnnxExport(root, manifest, reports)


def check_bundle(model: EventClip, root: Path, files: dict[str, dict[str, str]], windows: list[np.ndarray],
                 geometry: Any, rep: Any, text: np.ndarray) -> list[ParityReport]:
    """Parity of every graph in ``files`` against PyTorch on ``windows`` (real events); raises ParityError.

    ``text`` (K,D) is the text matrix for top-1 labels (and the fused head's baked matrix). The
    text encoder is checked on :data:`PARITY_PROMPTS` through the torch-free tokenizer, so the
    bundle's tokenizer and graph together must reproduce PyTorch's text embeddings.
    """
    import torch

    x = rep(windows, geometry)
    with torch.no_grad():
        ref = model.encode_frames(torch.from_numpy(x)).float().numpy()
    reports = []
    for key, info in files.items():
        if key == "text_encoder":
            continue
        session = _ort(root / info["path"])
        if key == "fused":
            from eventclip.frames.accumulate import count_events, stack_windows

            events, offsets = stack_windows(windows)
            counts = count_events(events, geometry, offsets, per_polarity=True,
                                  grid=rep.grid(geometry)).astype(np.float32)
            emb, logits = session.run(None, {"counts": counts})
            diff = float(np.abs(logits - model.card.logit_multiplier * ref @ text.T).max())
            if diff > 1e-3 * model.card.logit_multiplier:
                raise ParityError(f"fused.onnx logits differ from PyTorch by up to {diff:.3g} (frames built in the "
                                  "graph disagree with eventclip.frames); re-export without --fuse-head")
        else:
            (emb,) = session.run(None, {"frames": x})
        report = compare(ref, emb, text, name=info["path"], precision=info["precision"])
        log.info("parity %s", report)
        reports.append(report.check())
    from eventclip.model.tokenizer import ClipTokenizer

    prompts = list(PARITY_PROMPTS)
    tokens = ClipTokenizer(root / VOCAB_NAME, model.card.context_length)(prompts)
    (text_onnx,) = _ort(root / files["text_encoder"]["path"]).run(None, {"tokens": tokens})
    text_ref = model.encode_text_numpy(prompts)
    text_report = compare(text_ref, text_onnx, text_ref, name="text_encoder.onnx", precision="fp32")
    log.info("parity %s", text_report)
    reports.append(text_report.check())
    return reports


def verify_bundle(package: str | Path | EventClip, bundle_dir: str | Path, recording: str | Path,
                  prompts: str | Path | Sequence[str] | None = None) -> list[ParityReport]:
    """Re-run the parity check of an existing bundle against its model (e.g. after copying it)."""
    from eventclip.model.clip import EventClip
    from eventclip.runtime.base import find_bundle

    model = package if isinstance(package, EventClip) else EventClip.from_pretrained(Path(package))
    bundle = find_bundle(bundle_dir)
    rep = _representation(model)
    windows, geometry = recording_windows(recording, rep.window_us)
    baked = bundle.manifest.get("fused", {}).get("labels")
    _, text = text_matrix(model, prompts if prompts is not None or not baked else baked)
    files = {k: {"path": v["path"], "precision": v["precision"]} for k, v in bundle.manifest["files"].items()
             if k != "event_encoder.qdq"}
    return check_bundle(model.eval(), bundle.root, files, windows, geometry, rep, text)
