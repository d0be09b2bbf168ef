"""EventClip architecture: shapes, f_E == f_I at init, frozen towers, package round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventclip.model.clip import EventClip
from eventclip.model.configs import TINY_CONFIG as TINY
from eventclip.model.errors import ArchitectureError, PackageError


def tiny_model(seed: int = 0, **kw) -> EventClip:
    return EventClip.from_clip(TINY, seed=seed, **kw)


@pytest.fixture(scope="module")
def model() -> EventClip:
    return tiny_model().eval()


def test_shapes_and_unit_norm(model):
    frames = torch.randn(3, 3, 32, 32)
    emb = model.encode_frames(frames)
    assert emb.shape == (3, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    text = model.encode_text(["a dog", "a cat", "an event camera image of a car", "x"])
    assert text.shape == (4, 32)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(4))
    assert model.forward(frames, model.tokenize(["a", "b"])).shape == (3, 2)


def test_event_encoder_starts_as_image_encoder(model):
    frames = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.encode_frames(frames), model.encode_images(frames))
    assert model.event_encoder is not model.image_encoder


def test_only_event_encoder_trains(model):
    model.train()
    assert all(p.requires_grad for p in model.event_encoder.parameters())
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    assert not any(p.requires_grad for p in model.image_encoder.parameters())
    assert not model.text_encoder.training and not model.image_encoder.training
    model.eval()


def test_numpy_encode_matches_torch(model):
    frames = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    out = model.encode(frames)
    assert out.dtype == np.float32 and out.shape == (2, 32)
    np.testing.assert_allclose(out, model.encode_frames(torch.from_numpy(frames)).detach().numpy(), rtol=0, atol=1e-6)


def test_named_open_clip_vit_builds():
    model = EventClip.from_clip("ViT-S-32", with_image_encoder=False)
    assert model.card.architecture == "ViT-S-32" and model.input_size == 224 and model.embed_dim == 384
    assert model.image_encoder is None


def test_unknown_and_unsupported_architectures_are_refused():
    with pytest.raises(ArchitectureError, match="ViT-Q-99"):
        EventClip.from_clip("ViT-Q-99")
    with pytest.raises(ArchitectureError, match="SigLIP|custom"):
        EventClip.from_clip("ViT-B-16-SigLIP")
    with pytest.raises(ArchitectureError, match="ResNet|timm"):
        EventClip.from_clip("RN50")


def _states(m: EventClip) -> dict:
    return {f"e.{k}": v for k, v in m.event_encoder.state_dict().items()} | {
        f"t.{k}": v for k, v in m.text_encoder.state_dict().items()
    }


def test_package_round_trips_bit_identically(tmp_path):
    model = tiny_model(seed=1)
    with torch.no_grad():  # make f_E differ from f_I, as after training
        for p in model.event_encoder.parameters():
            p.add_(0.01)
    model.save_pretrained(tmp_path / "pkg", include_image_encoder=True)
    loaded = EventClip.from_pretrained(tmp_path / "pkg", with_image_encoder=True)
    a, b = _states(model), _states(loaded)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for k, v in model.image_encoder.state_dict().items():
        assert torch.equal(v, loaded.image_encoder.state_dict()[k])
    assert loaded.logit_scale.item() == model.logit_scale.item()
    assert loaded.model_hash == model.model_hash == loaded.card.model_hash
    assert loaded.card.clip_config == model.card.clip_config
    assert (tmp_path / "pkg" / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz").is_file()
    np.testing.assert_array_equal(loaded.tokenize(["a dog"]).numpy(), model.tokenize(["a dog"]).numpy())


def test_package_damage_is_named(tmp_path):
    folder = tiny_model().save_pretrained(tmp_path / "pkg")
    (folder / "text_encoder.safetensors").write_bytes(b"garbage")
    with pytest.raises(PackageError, match="text_encoder.safetensors.*sha256"):
        EventClip.from_pretrained(folder)
    (folder / "text_encoder.safetensors").unlink()
    with pytest.raises(PackageError, match="text_encoder.safetensors: missing"):
        EventClip.from_pretrained(folder)
    with pytest.raises(PackageError, match="image_encoder.safetensors"):
        EventClip.from_pretrained(folder, with_image_encoder=True)
    with pytest.raises(PackageError, match="model.json"):
        EventClip.from_pretrained(tmp_path)


def test_model_hash_tracks_weights():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = tiny_model(seed=0), tiny_model(seed=0)
    assert torch.equal(torch.rand(1), expected_next)  # seeding the init leaves the caller's RNG alone
    assert a.model_hash == b.model_hash != tiny_model(seed=1).model_hash
    with torch.no_grad():
        next(b.event_encoder.parameters()).view(-1)[0] += 1e-3
    assert a.model_hash != b.model_hash
    assert TINY["embed_dim"] == a.embed_dim


def test_tokenize_matches_open_clip_and_uses_the_package_vocab(tmp_path):
    import open_clip

    prompts = ["a photo of a dog.", "An event camera image of a Faces_easy", "x " * 100, "café &amp; 42"]
    model = tiny_model()
    np.testing.assert_array_equal(model.tokenize(prompts).numpy(), open_clip.tokenize(prompts).numpy())
    loaded = EventClip.from_pretrained(model.save_pretrained(tmp_path / "pkg"))
    assert loaded.tokenizer_path == tmp_path / "pkg" / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"
    np.testing.assert_array_equal(loaded.tokenize(prompts).numpy(), open_clip.tokenize(prompts).numpy())


@pytest.mark.gpu
def test_cuda_embeddings_match_cpu(tmp_path):
    model = tiny_model().eval()
    frames = torch.randn(4, 3, 32, 32)
    cpu = model.encode_frames(frames).detach()
    gpu = EventClip.from_pretrained(model.save_pretrained(tmp_path / "pkg"), map_location="cuda")
    torch.testing.assert_close(gpu.encode_frames(frames.cuda()).cpu(), cpu, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu.encode_text(["a dog"]).cpu(), model.encode_text(["a dog"]), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "size", "dim"),
                         [("ViT-B/32", 224, 512), ("ViT-B-16", 224, 512), ("ViT-L-14", 224, 768)])
def test_openai_architectures_full_size(tmp_path, arch, size, dim):
    model = EventClip.from_clip(arch).eval()
    assert model.input_size == size and model.embed_dim == dim and model.card.clip_config["quick_gelu"] is True
    frames = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert torch.equal(model.encode_frames(frames), model.encode_images(frames))
    assert model.encode_text(["a dog"]).shape == (1, dim)
    loaded = EventClip.from_pretrained(model.save_pretrained(tmp_path / "pkg"))
    assert loaded.model_hash == model.model_hash


def test_heads_live_in_the_package_and_are_hash_checked(tmp_path):
    from eventclip.model.package import read_head, write_head

    folder = tiny_model().save_pretrained(tmp_path / "pkg")
    weight = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_head(folder, "probe", {"weight": weight}, {"kind": "probe", "labels": ["a", "b"]})
    arrays, meta = read_head(folder, "probe")
    np.testing.assert_array_equal(arrays["weight"], weight)
    assert meta == {"kind": "probe", "labels": ["a", "b"]}
    assert EventClip.from_pretrained(folder).card.heads == {"probe": "heads/probe.npz"}
    with pytest.raises(PackageError, match="no head named 'tip' \\(heads present: probe\\)"):
        read_head(folder, "tip")
    (folder / "heads" / "probe.npz").write_bytes(b"changed")
    with pytest.raises(PackageError, match="probe.npz: sha256"):
        read_head(folder, "probe")
    with pytest.raises(PackageError, match="probe.npz: sha256"):
        EventClip.from_pretrained(folder)
