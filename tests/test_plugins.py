"""The one plugin pattern: a sensor or backend file dropped into its package shows up in the CLI choices
and the daemon config; availability reasons; listing imports no heavy SDK; the daemon's config shape."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from eventclip.daemon.config import load_config
from eventclip.daemon.main import build_parser
from eventclip.errors import ConfigError
from eventclip.io import FORMATS
from eventclip.plugins import Registry, missing
from eventclip.runtime import BACKENDS
from eventclip.sensors import SENSORS

HEAVY = ("torch", "onnxruntime", "tensorrt", "metavision_hal", "metavision_sdk_stream", "metavision_core",
         "dv_processing", "cv2", "open_clip")

FAKECAM = '''
from typing import Literal

from eventclip.plugins import missing
from eventclip.sensors._live import LiveConfig, LiveSource
from eventclip.sensors.base import SENSORS


class FakeCamConfig(LiveConfig):
    kind: Literal["fakecam"] = "fakecam"
    gain: int = 1


def list_devices():
    return []


@SENSORS.register(config=FakeCamConfig, unavailable=lambda: missing("fakecam_sdk_xyz", "pip install fakecam-sdk"),
                  capabilities={"live": True})
class FakeCamSource(LiveSource):
    kind = "fakecam"
    Config = FakeCamConfig
'''

FAKEBACKEND = '''
from typing import Literal

from pydantic import BaseModel, ConfigDict

from eventclip.runtime.base import BACKENDS


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["fakert"] = "fakert"
    lanes: int = 4


@BACKENDS.register(config=FakeConfig, capabilities={"devices": ("npu",)})
class FakeBackend:
    config_class = FakeConfig
    name = "fakert"
'''

PROBE = '''
import json, sys
import eventclip.runtime, eventclip.sensors
eventclip.sensors.__path__.append(sys.argv[1] + "/sensors")
eventclip.runtime.__path__.append(sys.argv[1] + "/runtime")
from eventclip.cli import build_parser as cli_parser
from eventclip.daemon.config import DaemonConfig
from eventclip.daemon.main import build_parser
from eventclip.sensors.discovery import discover


def choices(parser, dest):
    for action in parser._actions:
        if action.dest == dest:
            return list(action.choices)
        if isinstance(action.choices, dict):  # subcommands: the first that has the flag
            for sub in action.choices.values():
                found = choices(sub, dest)
                if found:
                    return found
    return None


cfg = DaemonConfig.model_validate({"source": {"kind": "fakecam", "gain": 3}, "prompts": "p.yaml",
                                   "backend": {"kind": "fakert", "lanes": 8}})
print(json.dumps({
    "sensor_choices": choices(build_parser(), "sensor"),
    "daemon_backend_choices": choices(build_parser(), "backend"),
    "cli_backend_choices": choices(cli_parser(), "backend"),
    "source": [type(cfg.source).__name__, cfg.source.gain],
    "backend": [type(cfg.backend).__name__, cfg.backend.lanes],
    "reports": {r.kind: r.reason for r in discover()},
}))
'''


def test_a_plugin_file_dropped_into_the_package_shows_up_everywhere(tmp_path: Path) -> None:
    """pkgutil finds the new modules on the packages' path: no list of modules was edited."""
    (tmp_path / "sensors").mkdir()
    (tmp_path / "runtime").mkdir()
    (tmp_path / "sensors" / "fakecam.py").write_text(FAKECAM)
    (tmp_path / "runtime" / "fakert.py").write_text(FAKEBACKEND)
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["sensor_choices"] == ["fakecam", "inivation", "prophesee", "replay", "video"]
    assert got["daemon_backend_choices"] == ["auto", "fakert", "onnxruntime", "tensorrt", "torch"]
    assert got["cli_backend_choices"] == got["daemon_backend_choices"]
    assert got["source"] == ["FakeCamConfig", 3] and got["backend"] == ["FakeConfig", 8]
    assert got["reports"]["fakecam"] == "fakecam_sdk_xyz is not installed: pip install fakecam-sdk"


def test_listing_every_family_imports_no_heavy_dependency() -> None:
    code = textwrap.dedent(f"""
        import sys
        from eventclip.daemon.config import DaemonConfig
        from eventclip.io import FORMATS
        from eventclip.runtime import BACKENDS
        from eventclip.sensors import SENSORS
        for registry in (SENSORS, BACKENDS, FORMATS):
            for kind in registry.names():
                registry.unavailable(kind), registry.capabilities(kind)
        DaemonConfig.model_json_schema()
        print(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_registries_list_the_shipped_plugins_with_capabilities() -> None:
    assert SENSORS.names() == ("inivation", "prophesee", "replay", "video")
    assert BACKENDS.choices() == ("auto", "onnxruntime", "tensorrt", "torch")
    assert {k: SENSORS.capabilities(k)["live"] for k in SENSORS.names()} == {
        "inivation": True, "prophesee": True, "replay": False, "video": False}
    assert BACKENDS.capabilities("tensorrt")["devices"] == ("cuda",)
    assert "int8" in BACKENDS.capabilities("onnxruntime")["precisions"]
    assert FORMATS["raw"] is FORMATS["evt3"] and FORMATS.capabilities("evt21")["write"] is False
    assert SENSORS.unavailable("replay") is None


def test_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown sensor 'kinect'; choose one of inivation, prophesee, replay, vid"):
        SENSORS.get("kinect")
    with pytest.raises(ConfigError, match=r"unknown backend 'tflite'; choose one of auto, onnxruntime"):
        BACKENDS["tflite"]


def test_unavailable_says_what_is_missing_and_how_to_get_it(monkeypatch) -> None:
    assert missing("json", "never shown") is None
    assert missing(("json", "no_such_mod_q1", "no_such_mod_q2.sub"), "pip install q") == (
        "no_such_mod_q1, no_such_mod_q2.sub are not installed: pip install q")
    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "cv2" else real(name, *a))
    assert SENSORS.unavailable("video") == "cv2 is not installed: pip install 'eventclip[video]'"
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert BACKENDS.unavailable("onnxruntime") == "onnxruntime is not installed: pip install 'eventclip[onnx]'"


def test_a_registry_built_in_test_gives_a_discriminated_union() -> None:
    class A(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["a"] = "a"
        x: int = 0

    class B(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: Literal["b"] = "b"
        y: str = ""

    family: Registry[object] = Registry("widget", "eventclip.plugins")  # a module: nothing to discover
    family._discovered = True
    family.register(config=A)(object())
    family.register(config=B, unavailable=lambda: "b needs a widget")(object())
    union = TypeAdapter(family.config_union())
    assert isinstance(union.validate_python({"kind": "b", "y": "z"}), B)
    with pytest.raises(ValidationError, match="does not match any of the expected tags: 'a', 'b'"):
        union.validate_python({"kind": "c"})
    assert family.unavailable("b") == "b needs a widget" and family.unavailable("a") is None
    with pytest.raises(ValueError, match="registered twice"):
        family.register(config=A)(object())


# ---- the daemon's source: and backend: -------------------------------------------------------------------


def test_daemon_flag_choices_come_from_the_registries() -> None:
    actions = {a.dest: a for a in build_parser()._actions}
    assert tuple(actions["sensor"].choices) == SENSORS.names()
    assert tuple(actions["backend"].choices) == BACKENDS.choices()


def test_old_top_level_sensor_keys_get_the_new_shape_spelt_out(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("sensor: prophesee\nsensor_options: {serial: '1'}\nprompts: p.yaml\n")
    with pytest.raises(ConfigError, match=r"sensor, sensor_options: the sensor settings moved into 'source:'") as err:
        load_config(old, {})
    assert str(old) in str(err.value) and "source: {kind: prophesee, serial:" in str(err.value)


def test_flags_set_the_source_and_backend_sections(tmp_path: Path) -> None:
    cfg_file = tmp_path / "d.yaml"
    (tmp_path / "cam.yaml").write_text("{}\n")
    cfg_file.write_text("source: {kind: prophesee, serial: '7', settings_file: cam.yaml}\nprompts: p.yaml\n"
                        "backend: {kind: onnxruntime, precision: int8}\n")
    cfg = load_config(cfg_file, {})
    assert cfg.source.serial == "7" and cfg.source.settings_file == tmp_path / "cam.yaml"
    assert cfg.backend.kind == "onnxruntime" and cfg.backend.precision == "int8"
    same = load_config(cfg_file, {"sensor": "prophesee", "backend": "onnxruntime", "speed": 2.0})
    assert same.backend.precision == "int8"  # the file's settings of that backend stay
    assert same.source.speed == 2.0 and same.source.serial == "7"  # and those of that sensor
    other = load_config(cfg_file, {"sensor": "replay", "input": "r.raw", "speed": 0, "backend": "torch"})
    assert other.source.kind == "replay" and other.source.realtime is False  # another kind starts afresh
    assert other.backend.kind == "torch" and other.backend.precision == "fp32"
    with pytest.raises(ConfigError, match="--speed: sensor 'inivation' has no playback speed"):
        load_config(None, {"sensor": "inivation", "speed": 2.0, "prompts": "p.yaml"})
