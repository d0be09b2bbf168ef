"""Apply :class:`CameraSettings` to a Metavision HAL ``Device`` and read them back.

Both SDK routes (SDK 5 ``Camera.get_device()`` and SDK 4 ``DeviceDiscovery.open``) hand us the same
HAL device, whose facilities are reached with ``get_i_*()``; a facility the sensor lacks is None.
Nested enums and classes (``I_ROI.Mode``, ``I_ROI.Window``, ...) are taken from the facility's own
class, as the pybind11 bindings define them there. The HAL reports refusal by returning False, so
every False becomes an error naming the setting.
"""

from __future__ import annotations

from typing import Any

from eventclip.sensors.errors import SensorError
from eventclip.sensors.settings import CameraSettings

_TRIGGER_CHANNELS = {"main": "MAIN", "aux": "AUX"}
_AFK_MODES = {"band_stop": "BAND_STOP", "band_pass": "BAND_PASS"}


def _facility(device: Any, getter: str, setting: str) -> Any:
    facility = getattr(device, getter)()
    if facility is None:
        raise SensorError(f"settings.{setting}: this camera has no {getter[6:]} facility (sensor generation?)")
    return facility


def _ok(result: Any, setting: str, detail: str) -> None:
    if result is False:
        raise SensorError(f"settings.{setting}: the camera refused {detail}")


def apply_settings(device: Any, settings: CameraSettings) -> None:
    """Push every non-default setting to the device; errors name the settings field."""
    biases = settings.all_biases()
    if biases:
        ll = _facility(device, "get_i_ll_biases", "biases")
        known = dict(ll.get_all_biases())
        for name, value in biases.items():
            if name not in known:
                raise SensorError(f"settings.biases: unknown bias {name!r}; this camera has {sorted(known)}")
            _ok(ll.set(name, value), "biases", f"{name}={value}")
    if settings.roi:
        roi = _facility(device, "get_i_roi", "roi")
        cls = type(roi)
        roi.set_mode(cls.Mode.ROI if settings.roi_mode == "roi" else cls.Mode.RONI)
        roi.set_windows([cls.Window(w.x, w.y, w.width, w.height) for w in settings.roi])
        roi.enable(True)
    if settings.erc_rate_ev_s is not None:
        erc = _facility(device, "get_i_erc_module", "erc_rate_ev_s")
        _ok(erc.set_cd_event_rate(settings.erc_rate_ev_s), "erc_rate_ev_s", f"{settings.erc_rate_ev_s} ev/s")
        _ok(erc.enable(True), "erc_rate_ev_s", "enabling ERC")
    if settings.anti_flicker is not None:
        afk = _facility(device, "get_i_antiflicker_module", "anti_flicker")
        band = settings.anti_flicker
        _ok(afk.set_frequency_band(band.low_hz, band.high_hz), "anti_flicker", f"{band.low_hz}-{band.high_hz} Hz")
        _ok(afk.set_filtering_mode(getattr(type(afk).AntiFlickerMode, _AFK_MODES[band.mode])),
            "anti_flicker", band.mode)
        _ok(afk.enable(True), "anti_flicker", "enabling anti-flicker")
    if settings.trail_filter is not None:
        trail = _facility(device, "get_i_event_trail_filter_module", "trail_filter")
        tf = settings.trail_filter
        _ok(trail.set_type(getattr(type(trail).Type, tf.type)), "trail_filter", tf.type)
        _ok(trail.set_threshold(tf.threshold_us), "trail_filter", f"threshold {tf.threshold_us} µs")
        _ok(trail.enable(True), "trail_filter", "enabling the trail filter")
    if settings.trigger_in:
        trigger = _facility(device, "get_i_trigger_in", "trigger_in")
        for channel in settings.trigger_in:
            _ok(trigger.enable(getattr(type(trigger).Channel, _TRIGGER_CHANNELS[channel])), "trigger_in", channel)


def read_settings(device: Any, applied: CameraSettings) -> CameraSettings:
    """The camera's current biases and ERC rate, with what HAL cannot read back (ROI, filters) as applied."""
    data = applied.model_dump(exclude={"bias_file", "biases"})
    ll = device.get_i_ll_biases()
    data["biases"] = ({str(k): int(v) for k, v in dict(ll.get_all_biases()).items()} if ll is not None
                      else applied.all_biases())
    erc = device.get_i_erc_module()
    if erc is not None and erc.is_enabled():
        data["erc_rate_ev_s"] = int(erc.get_cd_event_rate())
    return CameraSettings.model_validate(data)
