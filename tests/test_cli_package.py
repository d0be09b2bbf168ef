"""`eventclip package import|info`: a checkpoint file becomes a verified model package, and tampering is caught."""

from __future__ import annotations

import json

import torch
from open_clip.model import CLIP

from eventclip.cli import main
from eventclip.model.clip import EventClip
from tests.test_model_loaders import OPENAI_TINY


def test_import_then_info_round_trip(tmp_path, capsys):
    torch.manual_seed(0)
    clip = CLIP(**OPENAI_TINY, quick_gelu=True).eval()
    torch.save(clip.state_dict(), tmp_path / "clip.pt")
    pkg = tmp_path / "pkg"
    assert main(["package", "import", str(tmp_path / "clip.pt"), "--out", str(pkg)]) == 0
    model = EventClip.from_pretrained(pkg)
    for k, v in model.event_encoder.state_dict().items():
        assert torch.equal(v, clip.state_dict()[f"visual.{k}"]), k
    capsys.readouterr()
    assert main(["package", "info", str(pkg), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["input_size"] == 32 and card["model_hash"] == model.model_hash


def test_info_refuses_a_tampered_file(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(CLIP(**OPENAI_TINY, quick_gelu=True).state_dict(), tmp_path / "clip.pt")
    pkg = tmp_path / "pkg"
    assert main(["package", "import", str(tmp_path / "clip.pt"), "--out", str(pkg)]) == 0
    with open(pkg / "event_encoder.safetensors", "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x01\x02\x03")
    assert main(["package", "info", str(pkg)]) == 1
    assert "event_encoder.safetensors" in capsys.readouterr().err


def test_import_of_a_missing_file_names_it(tmp_path, capsys):
    assert main(["package", "import", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "pkg")]) == 1
    assert "nope.pt" in capsys.readouterr().err
