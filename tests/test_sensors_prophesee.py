"""The ``prophesee`` source against a STAND-IN of the Metavision SDK Python API: what only a live camera shows.

No Prophesee camera is attached here, so what a camera alone does (biases, ROI, ERC, filters,
triggers, an unplugged camera and reconnection, discovery by serial, the neuromorphic-drivers USB
route) is checked with ``tests/standin/`` (a labelled imitation of the documented API surface:
class and method names, EventCD/EventExtTrigger dtypes, slice iteration, reused buffers — see its
README.md) on ``sys.path``. The tests named ``test_standin_*`` check the adapter, not the SDK. The
route itself (real iteration, slicing, decoding, geometry, buffer copies) runs against the REAL SDK
with recordings in place of a camera in tests/test_sdk_sensor.py; docs/sensors.md lists what is
verified which way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from eventclip._optional import MissingDependencyError
from eventclip.errors import ConfigError
from eventclip.events import EventChunk, Geometry, empty_events
from eventclip.sensors import create
from eventclip.sensors.errors import DeviceNotFoundError, SensorError
from eventclip.sensors.prophesee import PropheseeConfig, PropheseeSource, _split_at_overflows, installed_backends
from eventclip.sensors.settings import read_bias_file, write_bias_file

STANDIN = Path(__file__).parent / "standin"
SDK_MODULES = ("metavision_hal", "metavision_sdk_stream", "metavision_sdk_base", "metavision_core")


def _forget_sdk() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in SDK_MODULES:
            del sys.modules[name]


@pytest.fixture
def sdk(monkeypatch):
    """The stand-in SDK on sys.path; yields its virtual-camera control module."""
    _forget_sdk()
    monkeypatch.syspath_prepend(str(STANDIN))
    import metavision_hal.standin as control

    control.reset()
    yield control
    control.reset()
    _forget_sdk()


def session(n: int, span_us: int, seed: int, width: int = 1280, height: int = 720) -> np.ndarray:
    from metavision_sdk_base import EventCD

    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=EventCD)
    ev["t"] = np.sort(rng.integers(0, span_us, n))
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def triggers(times: list[int]) -> np.ndarray:
    from metavision_sdk_base import EventExtTrigger

    tr = np.zeros(len(times), dtype=EventExtTrigger)
    tr["t"], tr["p"], tr["id"] = times, [1, 0] * (len(times) // 2) + [1] * (len(times) % 2), 0
    return tr


SETTINGS = {
    "biases": {"bias_diff_on": 20, "bias_fo": -5},
    "roi": [{"x": 10, "y": 20, "width": 300, "height": 200}],
    "roi_mode": "roni",
    "erc_rate_ev_s": 10_000_000,
    "anti_flicker": {"low_hz": 90, "high_hz": 130},
    "trail_filter": {"type": "STC_CUT_TRAIL", "threshold_us": 10_000},
    "trigger_in": ["main"],
}


@pytest.mark.parametrize("backend", ["sdk5", "sdk4"])
def test_standin_sdk_route_streams_every_event_with_triggers_and_applies_settings(sdk, backend: str) -> None:
    events = session(20_000, 50_000, seed=1)
    trig = triggers([1_000, 1_500, 30_000])
    camera = sdk.VirtualCamera("00050423", 1280, 720, [events], [trig])
    sdk.plug(camera)
    cfg = {"kind": "prophesee", "backend": backend, "serial": "00050423", "slice_us": 1000, "settings": SETTINGS}
    src = create({**cfg, "reconnect": {"enabled": False}})
    src.open()
    chunks = list(src)  # the virtual camera unplugs after its session; without reconnect the stream ends
    assert src.geometry == Geometry(1280, 720) and src.sensor_id == "00050423"
    data = [c for c in chunks if not c.meta.get("gap")]
    got = np.concatenate([c.events for c in data])
    # every event, unchanged, although the SDK reuses its buffer between slices (so the adapter copies)
    for name in ("x", "y", "p", "t"):
        np.testing.assert_array_equal(got[name], events[name])
    if backend == "sdk5":
        assert [c.t_end_us for c in data] == list(range(1000, 51_000, 1000))
    got_trig = np.concatenate([c.meta["triggers"] for c in data if "triggers" in c.meta])
    np.testing.assert_array_equal(got_trig["t"], trig["t"])
    np.testing.assert_array_equal(got_trig["p"], trig["p"])
    applied = camera.applied
    assert applied["biases"]["bias_diff_on"] == 20 and applied["biases"]["bias_fo"] == -5
    assert applied["roi"] == [(10, 20, 300, 200)] and applied["roi_mode"].name == "RONI" and applied["roi_enabled"]
    assert applied["erc_rate"] == 10_000_000 and applied["erc_enabled"]
    assert applied["afk_band"] == (90, 130) and applied["afk_mode"].name == "BAND_STOP" and applied["afk_enabled"]
    assert applied["trail_type"].name == "STC_CUT_TRAIL" and applied["trail_threshold"] == 10_000
    assert [c.name for c in applied["trigger_in"]] == ["MAIN"]


@pytest.mark.parametrize("lost_by", ["raise", "stop"])
def test_standin_unplugged_camera_reconnects_with_backoff_and_rebased_gap(sdk, lost_by: str) -> None:
    first, second = session(3000, 10_000, seed=2), session(2000, 8_000, seed=3)
    camera = sdk.VirtualCamera("00050423", 1280, 720, [first, second], lost_by=lost_by)
    sdk.plug(camera)
    sleeps: list[float] = []
    now = [100.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 3:
            sdk.plug(camera)  # plugged back in during the third wait

    statuses: list[str] = []
    cfg = PropheseeConfig(
        backend="sdk5", slice_us=1000, settings={"biases": {"bias_hpf": 7}},
        reconnect={"initial_s": 0.5, "max_attempts": 5},
    )
    src = PropheseeSource(cfg, lambda state, detail: statuses.append(state), clock=lambda: now[0], sleep=sleep)
    src.open()
    out = []
    with pytest.raises(SensorError, match="still unavailable after 5"):
        for chunk in src:
            out.append(chunk)
    assert sleeps[:3] == [0.5, 1.0, 2.0]
    gaps = [c for c in out if c.meta.get("gap")]
    assert len(gaps) == 1
    gap = gaps[0].meta
    assert gap["t_start_us"] == 10_000 and gap["attempts"] == 3
    assert gap["t_end_us"] == 10_000 + 3_500_000  # lost at sensor 10 ms; 3.5 s offline on the host clock
    at = next(i for i, c in enumerate(out) if c.meta.get("gap"))
    after = np.concatenate([c.events for c in out[at + 1 :]])
    np.testing.assert_array_equal(after["t"], second["t"] + gap["clock_offset_us"])
    np.testing.assert_array_equal(after["x"], second["x"])
    assert camera.opened == 2 and camera.applied["biases"]["bias_hpf"] == 7  # settings re-applied on reconnect
    assert statuses[:2] == ["online", "offline"] and statuses.count("online") == 2


def test_standin_wrong_serial_lists_the_serials_found(sdk) -> None:
    sdk.plug(sdk.VirtualCamera("00050423", 1280, 720, [session(10, 100, 0)]))
    sdk.plug(sdk.VirtualCamera("00050999", 640, 480, [session(10, 100, 0)]))
    src = create({"kind": "prophesee", "backend": "sdk5", "serial": "12345678"})
    with pytest.raises(DeviceNotFoundError) as info:
        src.open()
    message = str(info.value)
    assert "12345678" in message
    assert "Prophesee:hal_plugin_gen41:00050423" in message and "Prophesee:hal_plugin_gen41:00050999" in message


def test_standin_settings_saved_to_yaml_come_back_on_the_next_camera(sdk, tmp_path: Path) -> None:
    camera = sdk.VirtualCamera("00050423", 1280, 720, [session(100, 5000, 4)] * 2)
    sdk.plug(camera)
    bias_file = tmp_path / "tuned.bias"
    write_bias_file(bias_file, {"bias_diff_off": 30, "bias_refr": 12})
    src = create(
        {"kind": "prophesee", "backend": "sdk4", "settings": {"bias_file": str(bias_file), "erc_rate_ev_s": 5_000_000,
                                                               "roi": [{"x": 0, "y": 0, "width": 64, "height": 32}]}}
    )
    src.open()
    saved = tmp_path / "camera.yaml"
    src.save_settings(saved)
    src.close()
    data = yaml.safe_load(saved.read_text())
    assert data["biases"]["bias_diff_off"] == 30 and data["biases"]["bias_refr"] == 12
    assert data["erc_rate_ev_s"] == 5_000_000 and data["roi"] == [{"x": 0, "y": 0, "width": 64, "height": 32}]

    camera.applied.clear()  # a fresh camera with default settings
    again = create({"kind": "prophesee", "backend": "sdk4", "settings_file": str(saved),
                    "settings": {"erc_rate_ev_s": 6_000_000}})
    again.open()
    again.close()
    assert camera.applied["biases"]["bias_diff_off"] == 30 and camera.applied["biases"]["bias_refr"] == 12
    assert camera.applied["roi"] == [(0, 0, 64, 32)]
    assert camera.applied["erc_rate"] == 6_000_000  # inline settings override the file


def test_standin_refused_and_unknown_settings_name_the_field(sdk) -> None:
    sdk.plug(sdk.VirtualCamera("1", 640, 480, [session(10, 100, 0)], facilities=("biases",)))
    with pytest.raises(SensorError, match=r"settings.biases: the camera refused bias_fo=999"):
        create({"kind": "prophesee", "backend": "sdk5", "settings": {"biases": {"bias_fo": 999}}}).open()
    with pytest.raises(SensorError, match=r"unknown bias 'bias_nope'.*bias_diff_on"):
        create({"kind": "prophesee", "backend": "sdk5", "settings": {"biases": {"bias_nope": 1}}}).open()
    with pytest.raises(SensorError, match=r"settings.erc_rate_ev_s: this camera has no erc_module facility"):
        create({"kind": "prophesee", "backend": "sdk5", "settings": {"erc_rate_ev_s": 1000}}).open()


def test_missing_sdk_says_how_to_get_it() -> None:
    _forget_sdk()
    if installed_backends()["sdk5"]:
        pytest.skip("a Metavision SDK is installed here")
    with pytest.raises(MissingDependencyError) as info:
        create({"kind": "prophesee", "backend": "sdk5"}).open()
    message = str(info.value)
    assert "Prophesee's installer" in message and "openeb" in message and "eventclip[prophesee]" in message


def test_bias_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.bias"
    path.write_text("% a comment-less header is wrong\n")
    with pytest.raises(ConfigError, match=r"bad.bias, line 1"):
        read_bias_file(path)
    path.write_text("# tuned in Studio\n299     % bias_diff\n\n-10 % bias_fo\n")
    assert read_bias_file(path) == {"bias_diff": 299, "bias_fo": -10}


def test_usb_overflows_become_gap_chunks() -> None:
    from eventclip.events import make_events

    ev = make_events(np.zeros(6), np.zeros(6), np.ones(6), [10, 20, 30, 90, 100, 110])
    parts = list(_split_at_overflows(EventChunk(ev, Geometry(4, 4), meta={"source": "x"}), np.array([3])))
    assert [len(p) for p in parts] == [3, 0, 3]
    assert parts[1].meta == {"gap": True, "reason": "usb overflow", "t_start_us": 31, "t_end_us": 90}
    assert list(_split_at_overflows(EventChunk(empty_events(), Geometry(4, 4)), None))[0].meta == {}


@pytest.fixture
def nd(monkeypatch):
    """The stand-in neuromorphic_drivers on sys.path (and no Metavision SDK)."""
    _forget_sdk()
    sys.modules.pop("neuromorphic_drivers", None)
    monkeypatch.syspath_prepend(str(STANDIN))
    import neuromorphic_drivers

    neuromorphic_drivers.PLUGGED.clear()
    yield neuromorphic_drivers
    neuromorphic_drivers.PLUGGED.clear()
    sys.modules.pop("neuromorphic_drivers", None)


def test_standin_neuromorphic_drivers_route_converts_events_triggers_and_overflows(nd) -> None:
    pol = np.zeros(5, dtype=nd.POLARITY)
    pol["t"], pol["x"], pol["y"], pol["on"] = [10, 20, 30, 500, 510], [1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [1, 0, 1, 1, 0]
    trig = np.zeros(1, dtype=nd.TRIGGER)
    trig["t"], trig["id"], trig["rising"] = 25, 0, True
    nd.PLUGGED["00051852"] = [nd.Evt3Packet(pol[:3], trig), nd.Evt3Packet(pol[3:], None, np.array([0]))]
    src = create({"kind": "prophesee", "backend": "neuromorphic-drivers", "serial": "00051852",
                  "reconnect": {"enabled": False}})
    src.open()
    chunks = list(src)
    assert src.geometry == Geometry(1280, 720) and src.sensor_id == "00051852"
    data = [c for c in chunks if not c.meta.get("gap")]
    got = np.concatenate([c.events for c in data])
    np.testing.assert_array_equal(got["t"], pol["t"])
    np.testing.assert_array_equal(got["x"], pol["x"])
    np.testing.assert_array_equal(got["p"], pol["on"].astype(int))
    assert data[0].meta["triggers"]["t"].tolist() == [25] and data[0].meta["triggers"]["p"].tolist() == [1]
    gaps = [c.meta for c in chunks if c.meta.get("gap")]
    assert gaps == [{"gap": True, "reason": "usb overflow", "t_start_us": 31, "t_end_us": 500}]


def test_standin_neuromorphic_drivers_route_refuses_settings_and_lists_serials(nd) -> None:
    nd.PLUGGED["00051852"] = []
    with pytest.raises(SensorError, match="need the Metavision SDK route"):
        create({"kind": "prophesee", "backend": "neuromorphic-drivers", "settings": {"erc_rate_ev_s": 1000}}).open()
    with pytest.raises(DeviceNotFoundError, match="00051852"):
        create({"kind": "prophesee", "backend": "neuromorphic-drivers", "serial": "999"}).open()
