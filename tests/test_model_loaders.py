"""Each loader reads a checkpoint in its source's layout (random weights, written here), and bad ones fail clearly."""

from __future__ import annotations

import warnings

import pytest
import torch
from open_clip.model import CLIP

from eventclip.frames.preprocess import Representation
from eventclip.model.errors import CheckpointError
from eventclip.model.loaders import load_checkpoint

OPENAI_TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
}
"""A tiny CLIP with OpenAI's conventions (64-wide attention heads), so shapes determine the architecture."""


@pytest.fixture(scope="module")
def clip() -> CLIP:
    torch.manual_seed(3)
    return CLIP(**OPENAI_TINY, quick_gelu=True).eval()


def _same_as_clip(model, clip: CLIP) -> None:
    """Same weights as ``clip`` and, run end to end, the same embeddings (so the architecture matches too)."""
    ref = clip.state_dict()
    for k, v in model.image_encoder.state_dict().items():
        assert torch.equal(v, ref[f"visual.{k}"].float()), k
        assert torch.equal(model.event_encoder.state_dict()[k], v), k
    for k, v in model.text_encoder.state_dict().items():
        assert torch.equal(v, ref[k].float()), k
    assert model.logit_scale.item() == clip.logit_scale.item()
    frames, tokens = torch.randn(2, 3, 32, 32), model.tokenize(["a dog", "an event camera image of a cat"])
    reference = CLIP(**OPENAI_TINY, quick_gelu=True).eval()
    reference.load_state_dict({k: v.float() for k, v in ref.items()})
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model.encode_frames(frames), reference.encode_image(frames, normalize=True))
        torch.testing.assert_close(model.encode_tokens(tokens), reference.encode_text(tokens, normalize=True))


def test_plain_state_dict(tmp_path, clip):
    torch.save(clip.state_dict(), tmp_path / "clip.pt")
    model = load_checkpoint(tmp_path / "clip.pt")
    assert model.card.clip_config["vision_cfg"]["width"] == 64 and model.input_size == 32
    _same_as_clip(model, clip)


def test_open_clip_checkpoint_with_ddp_prefix(tmp_path, clip):
    state = {f"module.{k}": v for k, v in clip.state_dict().items()}
    torch.save({"epoch": 3, "name": "run", "state_dict": state}, tmp_path / "epoch_3.pt")
    _same_as_clip(load_checkpoint(tmp_path / "epoch_3.pt", OPENAI_TINY | {"quick_gelu": True}), clip)


def test_safetensors(tmp_path, clip):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(tmp_path / "clip.safetensors"))
    _same_as_clip(load_checkpoint(tmp_path / "clip.safetensors", quick_gelu=True), clip)
    assert load_checkpoint(tmp_path / "clip.safetensors").card.clip_config["quick_gelu"] is False


def test_openai_torchscript_fp16_archive_read_without_jit_load(tmp_path, clip, monkeypatch):
    half = CLIP(**OPENAI_TINY, quick_gelu=True).eval()
    half.load_state_dict(clip.state_dict())
    half.half()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(half, (torch.randn(1, 3, 32, 32).half(), torch.zeros(1, 77, dtype=torch.long)),
                                 check_trace=False)
    traced.save(str(tmp_path / "ViT-tiny.pt"))

    def refuse(*a, **k):
        raise AssertionError("torch.jit.load must not be called")

    monkeypatch.setattr(torch.jit, "load", refuse)
    model = load_checkpoint(tmp_path / "ViT-tiny.pt")
    assert model.card.source.endswith("(openai-jit)") and model.card.clip_config["quick_gelu"] is True
    _same_as_clip(model, half.float())


def test_authors_checkpoint_layout(tmp_path, clip):
    """Jeong et al. save {"checkpoint": LPTNMmodel.state_dict(), "optimizer": ...} (trainer.py)."""
    torch.manual_seed(9)
    trained = CLIP(**OPENAI_TINY, quick_gelu=True).state_dict()  # stands for the trained encoder_k
    state = {}
    for prefix, sd in (("encoder_q.", clip.state_dict()), ("encoder_k.", trained),
                       ("foundation_model.", clip.state_dict())):
        state.update({prefix + k: v for k, v in sd.items()})
    optim = {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(3)}},
             "param_groups": [{"lr": 1e-5, "params": [0]}]}
    torch.save({"checkpoint": state, "optimizer": optim}, tmp_path / "vitb.pt")
    model = load_checkpoint(tmp_path / "vitb.pt")
    assert model.card.preprocessing_variant == "authors" and "(authors)" in model.card.source
    assert model.card.representation["variant"] == "authors" and model.representation.input_size == 32
    # Their preprocessing, selected by the import: stretch onto the grid, count there, no CLIP mean/std.
    assert model.representation == Representation.authors(input_size=32)
    ref = clip.state_dict()
    for k, v in model.image_encoder.state_dict().items():
        assert torch.equal(v, ref[f"visual.{k}"]), k
    for k, v in model.event_encoder.state_dict().items():
        assert torch.equal(v, trained[f"visual.{k}"]), k
    for k, v in model.text_encoder.state_dict().items():
        assert torch.equal(v, trained[k]), k
    encoder_k = CLIP(**OPENAI_TINY, quick_gelu=True).eval()
    encoder_k.load_state_dict(trained)
    frames, tokens = torch.randn(2, 3, 32, 32), model.tokenize(["a dog"])
    with torch.no_grad():  # what their README's inference computes with encoder_k
        model.eval()
        torch.testing.assert_close(model.encode_frames(frames), encoder_k.encode_image(frames, normalize=True))
        torch.testing.assert_close(model.encode_tokens(tokens), encoder_k.encode_text(tokens, normalize=True))
        assert not torch.allclose(model.encode_frames(frames), model.encode_images(frames))


def test_authors_lightning_save_with_model_prefix(tmp_path, clip):
    state = {f"model.encoder_k.{k}": v for k, v in clip.state_dict().items()}
    state["logit_scale"] = torch.tensor(4.6)
    torch.save(state, tmp_path / "exp_last.pt")
    with pytest.raises(CheckpointError, match="no f_I"):
        load_checkpoint(tmp_path / "exp_last.pt")
    model = load_checkpoint(tmp_path / "exp_last.pt", with_image_encoder=False)
    assert model.card.preprocessing_variant == "authors"


class _RunsCode:
    """Unpickling this calls os.getcwd: a harmless stand-in for code a malicious file would run."""

    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_pickled_code_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2), "hook": _RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt: refused"):
        load_checkpoint(tmp_path / "evil.pt")


def test_shape_mismatch_names_key_and_shapes(tmp_path, clip):
    torch.save(clip.state_dict(), tmp_path / "clip.pt")
    wider = {**OPENAI_TINY, "embed_dim": 48}
    with pytest.raises(CheckpointError, match=r"text_projection.*\(64, 32\).*\(64, 48\)"):
        load_checkpoint(tmp_path / "clip.pt", wider)


def test_not_a_clip_and_not_a_file(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="keys .* are missing"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


def test_torchscript_archive_with_foreign_global_is_refused(tmp_path, clip):
    """A TorchScript zip whose data.pkl names anything but modules/tensors is refused before it runs."""
    import pickle
    import zipfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(clip, (torch.randn(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)),
                                 check_trace=False)
    traced.save(str(tmp_path / "good.pt"))
    with zipfile.ZipFile(tmp_path / "good.pt") as src, zipfile.ZipFile(tmp_path / "bad.pt", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps(_RunsCode(), protocol=2)
            dst.writestr(item, data)
    with pytest.raises(CheckpointError, match=r"bad\.pt: TorchScript archive references .*getcwd.*refusing"):
        load_checkpoint(tmp_path / "bad.pt")
