"""eventclipd's thread budget: how many threads decoding, numba, the encoder and BLAS may use, from the
cores the daemon is allowed.

Why one place: each library sizes its pools from the machine by itself (RAW decoding: one thread per
CPU; ONNX Runtime and torch: one per core; OpenMP/BLAS likewise), so on a shared or CPU-limited
machine the daemon ran many more busy threads than it had cores, and they fought each other: on a
loaded 2-core machine, whole-file EVT 3.0 decoding ran 15-17 Mev/s with two decode threads against
33-38 with one (issue 18). The budget is the smallest of ``--threads``, the CPUs the process may
run on (``sched_getaffinity``: taskset, cpusets) and the cgroup CPU quota (``cpu.max`` in cgroup v2,
``cpu.cfs_quota_us`` in v1; systemd's ``CPUQuota=``, ``docker --cpus``), and the plan never gives any
pool more than that. ``EVENTCLIP_DECODE_THREADS`` still overrides the decode threads.

The plan, for a budget of N cores: one decode thread (a single thread decodes RAW at hundreds of
Mev/s, more than any camera delivers; two from 8 cores), one core for the windowing stage's counting,
the rest for the encoder's intra-op threads (at least one); inter-op and numba's parallel pool one
thread each (eventclip's kernels are not parallel; they run in the pipeline's own threads). With 3
or more cores decode + windowing + encoder threads add up to N at most; with 1 or 2 cores each pool
gets one thread, the fewest that can work.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from eventclip.errors import ConfigError

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")

_V1_CPU_DIRS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")
"""Where cgroup v1 mounts the cpu controller, relative to the cgroup root."""


@dataclass(frozen=True)
class CpuBudget:
    """Cores the daemon may use, and what limited it (``--threads``, ``affinity``, or the cgroup file)."""

    cores: int
    limited_by: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ancestors(base: Path, rel: str) -> list[Path]:
    """``base/rel`` and every folder above it up to ``base`` (a limit on any of them applies)."""
    parts = [p for p in rel.split("/") if p]
    return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> tuple[float, str] | None:
    """The tightest CPU quota on this process's cgroup and its parents, in cores (quota / period), with
    the file it came from; None when no quota is set (or no cgroup file system is there)."""
    text = _read(proc_cgroup)
    if text is None:
        return None
    limits: list[tuple[float, str]] = []
    for line in text.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if hier == "0" and controllers == "":  # cgroup v2: "0::/system.slice/eventclipd.service"
            for folder in _ancestors(root, rel):
                fields = (_read(folder / "cpu.max") or "").split()
                if len(fields) == 2 and fields[0] != "max" and fields[0].isdigit() and fields[1].isdigit():
                    limits.append((int(fields[0]) / max(int(fields[1]), 1), str(folder / "cpu.max")))
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/docker/abc"
            for name in _V1_CPU_DIRS:
                for folder in _ancestors(root / name, rel):
                    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
                    if quota and period and quota.isdigit() and period.isdigit() and int(quota) > 0:
                        limits.append((int(quota) / max(int(period), 1), str(folder / "cpu.cfs_quota_us")))
    return min(limits) if limits else None


def allowed_cores(requested: int | None = None, *, affinity: set[int] | None = None, cgroup_root: Path = CGROUP_ROOT,
                  proc_cgroup: Path = PROC_CGROUP) -> CpuBudget:
    """The daemon's core budget: the smallest of ``requested`` (``--threads``), the affinity mask and the
    cgroup quota (rounded down, at least 1: two threads under a 1.5-core quota would be throttled).

    A request above what the process is allowed is lowered to it, with a warning.
    """
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    options = [(max(1, len(affinity)), "affinity")]
    quota = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if quota is not None:
        options.append((max(1, math.floor(quota[0] + 1e-9)), quota[1]))
    allowed = min(options)
    if requested is None:
        return CpuBudget(*allowed)
    if requested > allowed[0]:
        log.warning("--threads %d is more than the %d core(s) this process may use (%s); using %d", requested,
                    allowed[0], allowed[1], allowed[0])
        return CpuBudget(*allowed)
    return CpuBudget(requested, "--threads")


@dataclass(frozen=True)
class ThreadPlan:
    """Threads per pool for a :class:`CpuBudget` (see the module docstring for the rule)."""

    cores: int
    limited_by: str
    decode: int
    """RAW decode threads (the reading thread included)."""
    encoder: int
    """ONNX Runtime / torch intra-op threads, and OpenMP/BLAS threads."""
    interop: int
    numba: int
    decode_override: bool = False
    """True when ``EVENTCLIP_DECODE_THREADS`` set ``decode``."""

    def as_dict(self) -> dict[str, int | str | bool]:
        return asdict(self)


def plan_threads(budget: CpuBudget, env: dict[str, str] | None = None) -> ThreadPlan:
    """Split ``budget`` between the pools; ``EVENTCLIP_DECODE_THREADS`` (in ``env``) overrides decoding."""
    env = os.environ if env is None else env
    n = budget.cores
    decode = 1 if n < 8 else 2
    encoder = max(1, n - 1 - decode)
    override = env.get("EVENTCLIP_DECODE_THREADS", "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ConfigError(f"EVENTCLIP_DECODE_THREADS must be a whole number of threads >= 1, got {override!r}")
        decode = int(override)
    return ThreadPlan(n, budget.limited_by, decode, encoder, 1, 1, bool(override))


ENV_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def apply_env(plan: ThreadPlan, env: dict[str, str] | None = None) -> None:
    """Set the environment variables that size OpenMP/BLAS and numba pools when those libraries start.

    Takes effect for libraries not yet loaded: ``eventclipd`` calls it before ONNX Runtime, torch
    and numba start (numpy's own BLAS pool is already up by then, since importing eventclip imports
    numpy; the daemon's only BLAS work is the heads' small matrix products). :func:`apply` then sets
    what can still be set at run time.
    """
    env = os.environ if env is None else env
    for name in ENV_THREAD_VARS:
        env[name] = str(plan.encoder)
    env["NUMBA_NUM_THREADS"] = str(plan.numba)


def apply(plan: ThreadPlan) -> Callable[[], None]:
    """Apply the plan to the libraries already loaded (decode threads, numba's pool size before it starts,
    torch); returns a function that puts the previous values back (for in-process :func:`run`)."""
    import eventclip.io.prophesee_raw as raw

    undo: list[Callable[[], None]] = []
    previous_decode = raw.DECODE_THREADS
    raw.DECODE_THREADS = plan.decode
    undo.append(lambda: setattr(raw, "DECODE_THREADS", previous_decode))
    numba_parallel = sys.modules.get("numba.np.ufunc.parallel")
    if numba_parallel is not None and getattr(numba_parallel, "_is_initialized", False):
        before = numba_parallel.get_num_threads()
        numba_parallel.set_num_threads(min(plan.numba, before))
        undo.append(lambda: numba_parallel.set_num_threads(before))
    elif "numba" in sys.modules:
        config = sys.modules["numba"].config
        before_cfg = config.NUMBA_NUM_THREADS
        config.NUMBA_NUM_THREADS = plan.numba  # read when numba's pool starts, if it ever does
        undo.append(lambda: setattr(config, "NUMBA_NUM_THREADS", before_cfg))
    torch = sys.modules.get("torch")
    if torch is not None:
        before_torch = torch.get_num_threads()
        torch.set_num_threads(plan.encoder)
        undo.append(lambda: torch.set_num_threads(before_torch))
        try:
            torch.set_num_interop_threads(plan.interop)
        except RuntimeError:  # torch allows it only before its inter-op pool first ran; it stays as it was
            log.debug("torch's inter-op pool already started; its size stays %d", torch.get_num_interop_threads())
    log.info("thread plan: %d core(s) (%s): decode %d%s, encoder %d, inter-op %d, numba %d", plan.cores,
             plan.limited_by, plan.decode, " (EVENTCLIP_DECODE_THREADS)" if plan.decode_override else "",
             plan.encoder, plan.interop, plan.numba)

    def restore() -> None:
        for fn in reversed(undo):
            fn()

    return restore


def in_use(encoder: object) -> dict[str, int | None]:
    """The thread counts the libraries report now (read back, not the plan): decode, numba, torch, and the
    ONNX Runtime session's intra-op setting (None where that library is not in use)."""
    import eventclip.io.prophesee_raw as raw

    out: dict[str, int | None] = {"decode": raw.decode_threads(), "numba": None, "torch": None, "onnxruntime": None}
    numba_parallel = sys.modules.get("numba.np.ufunc.parallel")
    if numba_parallel is not None and getattr(numba_parallel, "_is_initialized", False):
        out["numba"] = numba_parallel.get_num_threads()
    elif "numba" in sys.modules:
        out["numba"] = sys.modules["numba"].config.NUMBA_NUM_THREADS
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    out["onnxruntime"] = getattr(encoder, "session_threads", None)
    return out
