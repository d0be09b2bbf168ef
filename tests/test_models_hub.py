"""`eventclip models list|pull` and `--model NAME`, with the real download code (huggingface_hub) against
a loopback server that serves files in the Hugging Face Hub's URL layout: /<repo>/resolve/<rev>/<file>,
LFS files redirected to a separate "CDN" origin with their sha256 as ETag, Range requests, 404s with
the hub's error code. The checkpoints are random-weight tiny CLIPs in the exact key layouts (the
authors' {"checkpoint": {"encoder_k.*", "encoder_q.*", "foundation_model.*"}}; open_clip's state dict).
No test touches the network."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from open_clip.model import CLIP

from eventclip.cli import main
from eventclip.errors import ConfigError
from eventclip.frames.preprocess import Representation
from eventclip.model import hub
from eventclip.model.card import ModelCard
from tests.test_model_loaders import OPENAI_TINY

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Two loopback origins: the hub (resolve URLs, metadata) and a CDN (the LFS bytes, with Range)."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut_first_get: set[str] = set()
        self.corrupt: set[str] = set()
        hub_self = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            @staticmethod
            def cut_at(data: bytes) -> int:
                """Past huggingface_hub's first 10 MB chunk, so a part of the file is on disk when the link drops."""
                return len(data) - 1_000_000

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                hub_self.requests.append((self.command, self.path, self.headers.get("Range")))
                if self.server is hub_self.cdn:
                    return self._cdn(body)
                parts = self.path.lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    self.send_response(404)
                    self.send_header("X-Error-Code", "RepoNotFound")
                    self.end_headers()
                    return
                repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
                data = hub_self.files.get((repo, filename))
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.end_headers()
                    return
                sha = hashlib.sha256(data).hexdigest()
                self.send_response(302)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", '"not-the-lfs-etag"')
                self.send_header("Location", f"http://127.0.0.1:{hub_self.cdn.server_port}/cdn/{sha}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _cdn(self, body: bool) -> None:
                sha = self.path.rsplit("/", 1)[-1]
                data = next((d for d in hub_self.files.values() if hashlib.sha256(d).hexdigest() == sha), None)
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if sha in hub_self.corrupt:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("ETag", f'"{sha}"')
                self.end_headers()
                if not body:
                    return
                if sha in hub_self.cut_first_get and not rng:
                    hub_self.cut_first_get.discard(sha)
                    self.wfile.write(data[: self.cut_at(data)])  # then drop the connection mid-body
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        for s in (self.server, self.cdn):
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"

    def add(self, repo: str, filename: str, data: bytes) -> str:
        self.files[(repo, filename)] = data
        return hashlib.sha256(data).hexdigest()

    def close(self) -> None:
        for s in (self.server, self.cdn):
            s.shutdown()
            s.server_close()


def _tiny_clip_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return CLIP(**OPENAI_TINY, quick_gelu=True).state_dict()


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    server = FakeHub()
    state = _tiny_clip_state()
    event_state = {k: v + 0.01 if k.startswith("visual.") else v for k, v in state.items()}
    authors = {"checkpoint": {**{f"encoder_k.{k}": v for k, v in event_state.items()},
                              **{f"encoder_q.{k}": v for k, v in state.items()},
                              **{f"foundation_model.{k}": v for k, v in state.items()}}, "epoch": 9}
    server.add("Eavn/event-clip", "vitb.pt", _saved(authors))
    server.add("timm/vit_base_patch32_clip_224.openai", "open_clip_pytorch_model.bin", _saved(state))
    monkeypatch.setenv("EVENTCLIP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("EVENTCLIP_MODELS_FILE", raising=False)
    yield server
    server.close()


def test_list_names_every_model_and_what_is_pulled(fake_hub, capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert set(rows) == {"openai-vit-b-32", "openai-vit-b-16", "openai-vit-l-14", "authors-vitb", "authors-vitl"}
    assert rows["authors-vitl"]["source"] == "Eavn/event-clip/vitl.pt"
    assert rows["openai-vit-l-14"]["source"] == "open_clip ViT-L-14 openai"
    assert all(r["pulled"] is None for r in rows.values())


def test_pull_authors_resumes_verifies_builds_the_package_and_onnx_bundle(fake_hub, tmp_path, capsys):
    sha = hashlib.sha256(fake_hub.files[("Eavn/event-clip", "vitb.pt")]).hexdigest()
    fake_hub.cut_first_get.add(sha)
    assert main(["models", "pull", "authors-vitb"]) == 0
    err = capsys.readouterr().err
    assert f"sha256 {sha} verified against the hub's LFS checksum" in err
    ranged = [r for r in fake_hub.requests if r[0] == "GET" and r[2]]
    assert len(ranged) == 1 and int(ranged[0][2].split("=")[1].rstrip("-")) > 0, "the retry resumed, not restarted"
    folder = hub.pulled("authors-vitb")
    assert folder == tmp_path / "cache" / "models" / "authors-vitb"
    card = ModelCard.read(folder)
    assert card.name == "authors-vitb" and "Eavn/event-clip" in card.source and card.preprocessing_variant == "authors"
    assert card.representation_model() == Representation.authors(input_size=32)
    assert (folder / "onnx" / "export.json").is_file()
    assert not list((tmp_path / "cache" / "downloads").rglob("*.pt")), "the raw checkpoint is removed once built"
    # A second pull is a no-op; --model NAME resolves to the folder, in classify too.
    assert main(["models", "pull", "authors-vitb"]) == 0
    assert "already pulled" in capsys.readouterr().err
    assert hub.resolve_model("authors-vitb") == folder


def test_pull_openai_through_open_clip_tags_falls_back_to_the_bin_file(fake_hub, capsys):
    assert main(["models", "pull", "openai-vit-b-32", "--no-onnx"]) == 0
    gets = [p for m, p, _ in fake_hub.requests if m == "HEAD"]
    assert gets[0].endswith("/timm/vit_base_patch32_clip_224.openai/resolve/main/open_clip_model.safetensors")
    assert gets[1].endswith("/open_clip_pytorch_model.bin")
    card = ModelCard.read(hub.pulled("openai-vit-b-32"))
    assert card.clip_config["quick_gelu"] is True, "OpenAI weights need QuickGELU, as open_clip's tag says"
    assert card.representation_model().count_at == "model"
    assert not (hub.pulled("openai-vit-b-32") / "onnx").exists()


def test_a_corrupted_download_is_refused_and_deleted(fake_hub, capsys):
    sha = hashlib.sha256(fake_hub.files[("Eavn/event-clip", "vitb.pt")]).hexdigest()
    fake_hub.corrupt.add(sha)
    assert main(["models", "pull", "authors-vitb", "--no-onnx"]) == 1
    err = capsys.readouterr().err
    assert "sha256" in err and "was deleted, run the pull again" in err
    assert hub.pulled("authors-vitb") is None


def test_offline_names_what_to_pull_and_copy(fake_hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "pull", "authors-vitb"]) == 1
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "eventclip models pull authors-vitb" in err and "copy the folder" in err
    with pytest.raises(ConfigError, match="copy the folder"):
        hub.resolve_model("authors-vitb")
    assert not [r for r in fake_hub.requests], "offline means no request at all"


def test_model_names_resolve_or_say_what_to_do(fake_hub, tmp_path):
    from eventclip.data import default_model_path

    assert hub.resolve_model("default") == default_model_path() == hub.resolve_model(None)
    assert hub.resolve_model(tmp_path) == tmp_path
    with pytest.raises(ConfigError, match="eventclip models pull openai-vit-l-14"):
        hub.resolve_model("openai-vit-l-14")
    with pytest.raises(ConfigError, match="not a model name"):
        hub.resolve_model("no-such-model")
    extra = tmp_path / "mine.yaml"
    extra.write_text("my-encoder:\n  description: ours\n  hub: {repo: me/enc, file: enc.pt}\n")
    import os

    os.environ["EVENTCLIP_MODELS_FILE"] = str(extra)
    try:
        assert "my-encoder" in hub.registry()
        extra.write_text("bad:\n  description: both\n  hub: {repo: a/b, file: c}\n  open_clip: {arch: x, tag: y}\n")
        with pytest.raises(ConfigError, match="exactly one of"):
            hub.registry()
    finally:
        del os.environ["EVENTCLIP_MODELS_FILE"]


def test_classify_and_the_daemon_take_a_pulled_name(fake_hub, tmp_path, capsys):
    from tests.conftest import recording

    rec = recording("prophesee_evt2_spinner_excerpt_gen3_640x480.raw")
    assert main(["models", "pull", "openai-vit-b-32", "--no-onnx"]) == 0
    prompts = tmp_path / "p.yaml"
    prompts.write_text("classes: [wheel, dot]\n")
    capsys.readouterr()
    assert main(["classify", str(rec), "--model", "openai-vit-b-32", "--prompts", str(prompts), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines and all(r["labels"] for r in lines if r["n_events"])
    # The daemon: a YAML `model: NAME` stays a name (not a path beside the YAML) and loads the pulled package.
    from eventclip.daemon.config import load_config
    from eventclip.daemon.engine import load_engine

    yml = tmp_path / "conf" / "cam.yaml"
    yml.parent.mkdir()
    yml.write_text(f"source: {{kind: replay, path: {rec}}}\nprompts: {prompts}\nmodel: openai-vit-b-32\n"
                   "backend: torch\n")
    cfg = load_config(yml, {})
    assert str(cfg.model) == "openai-vit-b-32"
    engine = load_engine(cfg)
    assert engine.package == hub.pulled("openai-vit-b-32") and isinstance(engine.package, Path)
