"""eventclipd's live page (``--http``): a real eventclipd process, its real ZeroMQ socket, a real
aiohttp server and a real headless Chromium. The page must show the labels the daemon published
for the same windows; the hub must cost the pipeline nothing while no page is open."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.request

import pytest

from eventclip.daemon.config import load_config
from eventclip.errors import ConfigError
from tests._browser import chromium
from tests._looping_daemon import looping_daemon
from tests.conftest import recording
from tests.test_daemon_stream import (  # noqa: F401 - fixtures
    SPINNER,
    Collector,
    _engine,
    _free_endpoint,
    _pipeline,
    _text_cache,
    package,
    prompts,
)

pytest.importorskip("aiohttp", reason="aiohttp is not installed (extra: http)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address, ok", [("127.0.0.1:8080", True), ("localhost:0", True), ("[::1]:8080", True),
                                         ("0.0.0.0:8080", False), ("192.168.1.4:80", False)])
def test_http_address_is_loopback_unless_allowed(address, ok, prompts):  # noqa: F811
    base = {"sensor": "replay", "input": "x.raw", "prompts": prompts, "http": address}
    if ok:
        assert load_config(None, base).http == address
    else:
        with pytest.raises(ConfigError, match="allow_remote"):
            load_config(None, base)
        assert load_config(None, {**base, "allow_remote": True}).http == address


@pytest.mark.parametrize("address", ["8080", "127.0.0.1", "127.0.0.1:http", "http://127.0.0.1:8080/"])
def test_bad_http_address_says_the_form(address, prompts):  # noqa: F811
    with pytest.raises(ConfigError, match=r"http: .*HOST:PORT"):
        load_config(None, {"sensor": "replay", "input": "x.raw", "prompts": prompts, "http": address})


@pytest.mark.parametrize("watching", [False, True])
def test_hub_holds_and_renders_nothing_while_nobody_watches(package, prompts, watching):  # noqa: F811
    from eventclip.daemon.live.hub import Cursor, LiveHub
    from eventclip.daemon.publish import Publisher

    cfg = load_config(None, {"sensor": "replay", "input": recording(SPINNER), "speed": 0, "prompts": prompts,
                             "window_us": 5000, "publish": "tcp://127.0.0.1:*"})
    engine = _engine(package, prompts)
    hub = LiveHub(engine.classifier.representation)
    publisher = Publisher(cfg.publish, "test")
    publisher.observers.append(hub.on_message)
    if watching:
        hub.attach()
    pipe = _pipeline(cfg, engine, publisher, live=hub)
    try:
        pipe.start()
        assert pipe.wait() == 0
    finally:
        publisher.close()
    published = pipe.metrics.counters.windows_published
    assert hub.points_total == published > 10  # the timeline is kept either way (one float per window)
    assert hub.renders == 0  # no PNG is made before a page asks
    if not watching:
        assert hub._batch is None
        return
    update = hub.update(Cursor())
    assert hub.renders == 1 and update["window"]["t_start_us"] == hub._batch.windows[-1].t_start
    assert update["images"]["model"].startswith("data:image/png;base64,") and update["status"]["state"] == "offline"
    hub.detach()
    assert hub._batch is None


def _page_window(driver) -> dict:
    return driver.execute_script("""
        const seq = document.getElementById('window-seq');
        const img = (id) => document.getElementById(id).naturalWidth;
        return {seq: seq.textContent, t_start_us: seq.dataset.tStartUs,
                labels: [...document.querySelectorAll('#labels li')].map(li => [li.dataset.label, li.dataset.score]),
                model_width: img('img-model'), sensor_width: img('img-sensor'),
                points: Number(document.getElementById('timeline').dataset.points),
                stats: [...document.querySelectorAll('#stats tr')].map(tr => tr.dataset.key),
                status: document.getElementById('status').dataset.state};
    """)


def _new_window(driver, seen_seqs: set[str]) -> dict | None:
    """The page's window once it shows one not seen before, with both images, the timeline and stats."""
    page = _page_window(driver)
    complete = page["labels"] and page["model_width"] and page["points"] and page["stats"]
    return page if complete and page["seq"] not in seen_seqs else None


def _wait(predicate, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the page")


def test_page_in_a_real_browser_shows_the_labels_published_over_zeromq(package, prompts, tmp_path):  # noqa: F811
    endpoint = _free_endpoint()
    port = _free_port()
    coll = Collector(endpoint)
    proc = looping_daemon(package, prompts, tmp_path, endpoint, "--http", f"127.0.0.1:{port}",
                          "--wait-for-subscribers", "1")
    driver = None
    try:
        assert coll.wait_for(lambda t, m: t.endswith("/stats")), proc.stderr.read() if proc.poll() else "no stats"
        driver = chromium(tmp_path / "profile")
        url = f"http://127.0.0.1:{port}/"
        driver.get(url)
        driver.switch_to.new_window("tab")  # a second tab on the same page
        driver.get(url)
        tabs = driver.window_handles
        assert len(tabs) == 2
        seen = []
        for _ in range(3):
            for tab in tabs:
                driver.switch_to.window(tab)
                seen.append(_wait(lambda: _new_window(driver, {w["seq"] for w in seen})))
        with urllib.request.urlopen(url + "state.json", timeout=10) as reply:
            state = json.loads(reply.read())
        screenshot = tmp_path / "live.png"
        driver.save_screenshot(str(screenshot))
        if os.environ.get("EVENTCLIP_LIVE_SCREENSHOT"):
            shutil.copyfile(screenshot, os.environ["EVENTCLIP_LIVE_SCREENSHOT"])
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(20)
        coll.close()
    assert proc.returncode == 0
    published = {m["seq"]: m for m in coll.topic("labels")}
    for page in seen:
        msg = published[int(page["seq"])]  # the very window the daemon published under that seq
        assert int(page["t_start_us"]) == msg["t_start_us"]
        assert page["labels"] == [[lab["label"], f"{lab['score']:.3f}"] for lab in msg["labels"]]
        assert page["model_width"] == 32 and page["sensor_width"] == 640  # model input; 640x480 sensor frame
        assert "windows/s" in page["stats"] and "drops windows_policy" in page["stats"]
        assert page["status"] == "online"
    assert len({p["seq"] for p in seen}) == len(seen) == 6
    assert state["window"]["seq"] in published or state["window"]["seq"] > max(published)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
