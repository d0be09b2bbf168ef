"""Exporters: model package -> ONNX bundle (+ INT8) -> TensorRT engines, each checked for parity.

Needs the training-side extras (torch, onnx); the runtime never imports this package.
"""
