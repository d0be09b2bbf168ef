"""The shipped systemd units, checked by systemd's own tools where they are installed (no running
systemd needed): `systemd-analyze verify` accepts them once ExecStart points at a real eventclipd,
and the hardening keeps `systemd-analyze security --offline` at an exposure below 5 ("MEDIUM").
The template ``eventclipd@.service`` (one daemon per camera) is verified as a template and as an
instance (tests/test_daemon_cameras.py checks its example configs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "systemd" / "eventclipd.service"
TEMPLATE = ROOT / "systemd" / "eventclipd@.service"
INSTALLED_EXE = "/opt/eventclip/venv/bin/eventclipd"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


def _unit_for_this_machine(tmp_path: Path, text: str | None = None, name: str = "eventclipd.service") -> Path:
    exe = shutil.which("eventclipd")
    if exe is None:
        pytest.skip("eventclipd is not on PATH (install the package first)")
    path = tmp_path / name
    path.write_text((text or UNIT.read_text()).replace(INSTALLED_EXE, exe))
    return path


def _verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=120)


def test_unit_passes_systemd_analyze_verify(tmp_path):
    assert INSTALLED_EXE in UNIT.read_text()
    result = _verify(_unit_for_this_machine(tmp_path))
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_verify_catches_a_broken_unit(tmp_path):
    broken = UNIT.read_text().replace("Type=notify", "Type=notifyy")
    result = _verify(_unit_for_this_machine(tmp_path, broken))
    assert "notifyy" in result.stderr


@pytest.mark.parametrize("name", ["eventclipd@.service", "eventclipd@door.service"])
def test_template_passes_systemd_analyze_verify_as_template_and_instance(tmp_path, name):
    text = TEMPLATE.read_text()
    assert INSTALLED_EXE in text and "--config /etc/eventclip/%i.yaml" in text
    result = _verify(_unit_for_this_machine(tmp_path, text, name))
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    broken = _verify(_unit_for_this_machine(tmp_path, text.replace("Type=notify", "Type=notifyy"), name))
    assert "notifyy" in broken.stderr


def test_template_keeps_the_single_units_hardening():
    def settings(text: str) -> set[str]:
        return {line for line in text.splitlines() if line and not line.startswith("#")}

    only_single = settings(UNIT.read_text()) - settings(TEMPLATE.read_text())
    assert all(line.startswith(("ExecStart=", "Description=", "StateDirectory=", "CacheDirectory=", "Environment=XDG"))
               for line in only_single), only_single


@pytest.mark.parametrize("unit", [UNIT, TEMPLATE])
def test_hardening_exposure_stays_below_medium(tmp_path, unit):
    path = _unit_for_this_machine(tmp_path, unit.read_text(), "eventclipd@door.service" if unit == TEMPLATE
                                  else "eventclipd.service")
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(path)], capture_output=True,
                            text=True, timeout=120)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result.stdout[-2000:] + result.stderr
    assert float(found.group(1)) < 5.0
