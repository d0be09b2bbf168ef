"""``eventclip sensors list``: cameras per backend, and why a backend is unavailable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from eventclip.cli import main
from eventclip.sensors.prophesee import installed_backends

STANDIN = Path(__file__).parent / "standin"


def _forget_sdk() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in ("metavision_hal", "metavision_sdk_stream", "metavision_sdk_base", "metavision_core"):
            del sys.modules[name]


def listed(capsys) -> dict[str, dict]:
    assert main(["sensors", "list", "--json"]) == 0
    return {r["kind"]: r for r in json.loads(capsys.readouterr().out)}


def test_missing_backend_is_reported_with_how_to_install(capsys) -> None:
    _forget_sdk()
    if any(installed_backends().values()):
        pytest.skip("a Prophesee backend is installed here")
    reports = listed(capsys)
    assert reports["prophesee"]["available"] is False
    assert "Prophesee's installer" in reports["prophesee"]["reason"]
    assert reports["inivation"]["available"] is True  # dv-processing is a test dependency
    assert set(reports) == {"prophesee", "inivation", "video"}


def test_cameras_seen_through_the_standin_sdk_are_listed(capsys, monkeypatch) -> None:
    _forget_sdk()
    monkeypatch.syspath_prepend(str(STANDIN))
    import metavision_hal.standin as control
    from metavision_sdk_base import EventCD

    control.reset()
    control.plug(control.VirtualCamera("00050423", 1280, 720, [np.zeros(1, EventCD)]))
    try:
        reports = listed(capsys)
        main(["sensors", "list"])
        text = capsys.readouterr().out
    finally:
        control.reset()
        _forget_sdk()
    devices = reports["prophesee"]["devices"]
    assert reports["prophesee"]["available"] is True
    assert {"serial": "Prophesee:hal_plugin_gen41:00050423", "model": "", "backend": "sdk5"} in devices
    assert "Prophesee:hal_plugin_gen41:00050423" in text and "via sdk4" in text


def test_watch_reports_rate_and_total_of_a_replay(capsys) -> None:
    from .conftest import recording

    path = recording("inivation_dvxplorer_320x240.aedat4")
    code = main(["sensors", "watch", "--set", "kind=replay", "--set", f"path={path}", "--set", "realtime=false",
                 "--every", "0.1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "320x240" in out and "status online" in out and "status offline: end of recording" in out
    assert "total events=111954 gaps=0" in out
    assert out.count("Mev/s") >= 4


def test_watch_names_a_bad_config_field(capsys, tmp_path: Path) -> None:
    code = main(["sensors", "watch", "--set", "kind=replay", "--set", f"path={tmp_path}", "--set", "speed=-1"])
    err = capsys.readouterr().err
    assert code == 2 and "speed" in err and "greater than 0" in err
