"""eventclipd with ``--sensor prophesee --input RECORDING``: a real eventclipd process reads the recording
through the REAL Metavision SDK's camera code and publishes over a real ZeroMQ socket on loopback; the
labels equal ``classify_file`` on the same recording (so the SDK route delivered every event, with the
file's own times)."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.io import read_events
from tests import test_daemon_stream as daemon_tests
from tests._sdk import copy_recording
from tests.test_daemon_stream import Collector, _daemon, _free_endpoint, _schema_check

pytestmark = pytest.mark.sdk
package = daemon_tests.package
"""The tiny random-weight model package (with its ONNX export) of the daemon tests."""
prompts = daemon_tests.prompts

SPINNER = "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"


@pytest.mark.parametrize("backend", ["sdk5", "sdk4"])
def test_daemon_plays_a_recording_through_the_sdk_and_publishes_what_classify_finds(package, prompts, tmp_path,
                                                                                  backend):
    from eventclip.heads.classifier import build_classifier
    from eventclip.heads.prompts import load_prompts
    from eventclip.stream import classify_file, open_encoder

    path = copy_recording(SPINNER, tmp_path)
    config = tmp_path / "daemon.yaml"
    config.write_text(f"source: {{kind: prophesee, backend: {backend}}}\n")
    endpoint = _free_endpoint()
    coll = Collector(endpoint)
    proc = _daemon(["--config", str(config), "--sensor", "prophesee", "--input", str(path), "--speed", "0",
                    "--prompts", str(prompts), "--model", str(package), "--backend", "onnxruntime",
                    "--publish", endpoint, "--window-us", "5000", "--wait-for-subscribers", "1",
                    "--log-format", "text"], {"EVENTCLIP_CACHE": str(tmp_path / "cache")})
    try:
        _, err = proc.communicate(timeout=120)
        assert coll.done.wait(10)
    finally:
        coll.close()
    assert proc.returncode == 0, err
    _schema_check(coll)
    # "starting" goes out as soon as the socket is bound, before the subscriber may have joined (as in
    # test_daemon_stream); whether it arrives is ZeroMQ's slow-joiner race, not the daemon's behaviour.
    assert [m["state"] for m in coll.topic("status")] in (["online", "offline"], ["starting", "online", "offline"])
    labels = coll.topic("labels")
    assert {m["sensor_id"] for m in labels} == {SPINNER}
    classifier = build_classifier(package, open_encoder(package, "onnxruntime"), load_prompts(prompts))
    expected = list(classify_file(path, classifier, 5000))
    assert len(labels) == len(expected) > 5
    for message, want in zip(labels, expected, strict=True):
        assert (message["t_start_us"], message["t_end_us"], message["n_events"]) == \
            (want.t_start_us, want.t_end_us, want.n_events)
        assert [lab["label"] for lab in message["labels"]] == [name for name, _ in want.labels]
        np.testing.assert_allclose([lab["score"] for lab in message["labels"]], [p for _, p in want.labels], atol=1e-5)
    assert sum(m["n_events"] for m in labels) == len(read_events(path))
