#!/usr/bin/env bash
# One call on a GPU machine (an H200 when lent): TensorRT FP16 + INT8 engines for ViT-B/32 and the
# default model, parity vs ONNX Runtime, batch 1/8/32 latency (CUDA events, median of 100 runs),
# zero-copy CUDA frames -> TensorRT, the CUDA accumulation check (gpu_frames.py) and the daemon end to
# end with ViT-B/32 on TensorRT FP16 and on PyTorch CUDA at 50 Mev/s (gpu_daemon.py). < 11 min.
#
#   bash benchmarks/gpu_check.sh                 # everything
#   bash benchmarks/gpu_check.sh --models vitb32 # pass-through options of gpu_check.py
#
# TensorRT: if `import tensorrt` fails, the script tries `pip install tensorrt-cu13` (CUDA 13, the
# build this torch uses), then `tensorrt`; with TRT_WHEELS=/dir it installs from local wheels only
# (machines without network). If neither works it still runs the PyTorch CUDA part and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || true
if ! "$PY" -c "import tensorrt" 2>/dev/null; then
    echo "tensorrt not importable: trying pip (timeout 120 s)"
    pipopts=(--quiet --disable-pip-version-check)
    [ -n "${TRT_WHEELS:-}" ] && pipopts+=(--no-index --find-links "$TRT_WHEELS")
    timeout 120 "$PY" -m pip install "${pipopts[@]}" "tensorrt-cu13>=10" 2>&1 | tail -3 \
        || timeout 60 "$PY" -m pip install "${pipopts[@]}" "tensorrt>=10" 2>&1 | tail -3 || true
    "$PY" -c "import tensorrt; print('installed tensorrt', tensorrt.__version__)" || echo "tensorrt unavailable"
fi
timeout 390 "$PY" benchmarks/gpu_check.py "$@"
rc=$?
if [ -f benchmarks/gpu_frames.py ]; then
    echo "--- CUDA frame accumulation (benchmarks/gpu_frames.py) ---"
    timeout 60 "$PY" benchmarks/gpu_frames.py || echo "gpu_frames.py failed (rc=$?)"
fi
echo "--- eventclipd end to end, ViT-B/32 (benchmarks/gpu_daemon.py) ---"
timeout 200 "$PY" benchmarks/gpu_daemon.py || echo "gpu_daemon.py failed (rc=$?)"
echo "gpu_check.sh done in $(( $(date +%s) - start )) s (rc=$rc)"
exit $rc
