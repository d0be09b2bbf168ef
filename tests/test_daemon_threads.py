"""The daemon's thread budget: cores from --threads, the affinity mask and cgroup quotas (v1 and v2, read
from a cgroup tree built in a temporary folder), and how the plan splits them."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventclip.daemon.threads import CpuBudget, allowed_cores, apply, cgroup_cpu_limit, plan_threads
from eventclip.errors import ConfigError


def _tree(root: Path, files: dict[str, str], proc: str) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    proc_file = root / "proc_self_cgroup"
    proc_file.write_text(proc)
    return proc_file


def test_cgroup_v2_quota_of_the_service_and_its_parents(tmp_path: Path) -> None:
    proc = _tree(tmp_path, {"cpu.max": "max 100000",
                            "system.slice/cpu.max": "300000 100000",
                            "system.slice/eventclipd.service/cpu.max": "150000 100000"},
                 "0::/system.slice/eventclipd.service\n")
    limit, where = cgroup_cpu_limit(tmp_path, proc)
    assert limit == 1.5 and where.endswith("system.slice/eventclipd.service/cpu.max")
    (tmp_path / "system.slice/cpu.max").write_text("50000 100000\n")  # a parent's quota binds the child too
    assert cgroup_cpu_limit(tmp_path, proc)[0] == 0.5
    budget = allowed_cores(affinity=set(range(8)), cgroup_root=tmp_path, proc_cgroup=proc)
    assert budget == CpuBudget(1, str(tmp_path / "system.slice/cpu.max"))  # rounded down, at least one


def test_cgroup_v2_without_quota_and_inside_a_container(tmp_path: Path) -> None:
    proc = _tree(tmp_path, {"cpu.max": "max 100000"}, "0::/\n")
    assert cgroup_cpu_limit(tmp_path, proc) is None
    assert allowed_cores(affinity={0, 1, 2}, cgroup_root=tmp_path, proc_cgroup=proc) == CpuBudget(3, "affinity")
    (tmp_path / "cpu.max").write_text("200000 100000\n")  # docker --cpus 2: the namespace root holds the quota
    assert allowed_cores(affinity=set(range(16)), cgroup_root=tmp_path, proc_cgroup=proc).cores == 2


def test_cgroup_v1_cfs_quota(tmp_path: Path) -> None:
    proc = _tree(tmp_path, {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000",
                            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
                            "cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
                 "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    limit, where = cgroup_cpu_limit(tmp_path, proc)
    assert limit == 3.0 and where.endswith("docker/abc/cpu.cfs_quota_us")
    (tmp_path / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert cgroup_cpu_limit(tmp_path, proc) is None


def test_no_cgroup_file_system_leaves_the_affinity(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path, tmp_path / "missing") is None
    assert allowed_cores(affinity={3}, cgroup_root=tmp_path, proc_cgroup=tmp_path / "missing") == CpuBudget(
        1, "affinity")


def test_threads_flag_lowers_the_budget_and_is_lowered_to_what_is_allowed(tmp_path: Path, caplog) -> None:
    kw = {"cgroup_root": tmp_path, "proc_cgroup": tmp_path / "missing"}
    assert allowed_cores(2, affinity=set(range(8)), **kw) == CpuBudget(2, "--threads")
    assert allowed_cores(8, affinity={0, 1}, **kw) == CpuBudget(2, "affinity")
    assert "--threads 8 is more than the 2 core(s)" in caplog.text


@pytest.mark.parametrize(("cores", "decode", "encoder"), [(1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 2), (8, 2, 5),
                                                          (64, 2, 61)])
def test_plan_never_gives_more_threads_than_cores(cores: int, decode: int, encoder: int) -> None:
    plan = plan_threads(CpuBudget(cores, "affinity"), env={})
    assert (plan.decode, plan.encoder, plan.interop, plan.numba) == (decode, encoder, 1, 1)
    if cores >= 3:  # decoding, windowing's counting and the encoder each get cores of their own
        assert plan.decode + 1 + plan.encoder <= cores


def test_decode_threads_environment_variable_still_overrides() -> None:
    plan = plan_threads(CpuBudget(2, "affinity"), env={"EVENTCLIP_DECODE_THREADS": "3"})
    assert plan.decode == 3 and plan.decode_override
    with pytest.raises(ConfigError, match="EVENTCLIP_DECODE_THREADS"):
        plan_threads(CpuBudget(2, "affinity"), env={"EVENTCLIP_DECODE_THREADS": "two"})


def test_apply_sets_the_decode_threads_and_puts_them_back() -> None:
    import eventclip.io.prophesee_raw as raw

    before = raw.DECODE_THREADS
    restore = apply(plan_threads(CpuBudget(1, "--threads"), env={}))
    try:
        assert raw.DECODE_THREADS == 1 and raw.decode_threads() == 1
    finally:
        restore()
    assert raw.DECODE_THREADS == before
