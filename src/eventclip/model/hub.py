"""Named models: what ``eventclip models pull`` fetches and builds, and what ``--model NAME`` finds.

Why: no package registry ships CLIP weights, so a user with a real camera had to find a
checkpoint, download it by hand and import it before seeing a real label. Here a name from the
registry (``data/models.yaml``, plus the user's ``EVENTCLIP_MODELS_FILE``) is downloaded from the
Hugging Face Hub with ``huggingface_hub`` (progress bar, resumed after a dropped connection or an
interrupted run), checked against its sha256, turned into a model package with the loaders of
:mod:`eventclip.model.loaders` and exported to its ONNX bundle, in a cache folder. A pulled model is
a plain folder: copying it to another machine's cache (or passing its path) is all an offline
machine needs.

OpenAI CLIP entries are located through open_clip's pretrained tags (their ``hf_hub``
repository); the authors' encoders through their repository ``Eavn/event-clip``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eventclip.errors import ConfigError, EventclipError
from eventclip.model.card import sha256_file

log = logging.getLogger(__name__)

REGISTRY = Path(__file__).resolve().parents[1] / "data" / "models.yaml"
DEFAULT_NAME = "default"
"""``--model default`` is the bundled model."""
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
"""The weight files of open_clip's hub repositories, in the order open_clip itself tries them."""


class HubError(EventclipError):
    """A named model cannot be fetched or built; the message says what to do instead."""


class HubFile(BaseModel):
    """A file in a Hugging Face Hub repository; ``sha256`` (hex) when it is known in advance."""

    model_config = ConfigDict(extra="forbid")
    repo: str
    file: str | None = None
    revision: str = "main"
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class OpenClipTag(BaseModel):
    """An open_clip architecture and pretrained tag, e.g. ViT-B-32 / openai."""

    model_config = ConfigDict(extra="forbid")
    arch: str
    tag: str


class ModelEntry(BaseModel):
    """One registry entry: where the weights are and how to read them."""

    model_config = ConfigDict(extra="forbid")
    name: str = ""
    description: str
    open_clip: OpenClipTag | None = None
    hub: HubFile | None = None
    kind: str = "auto"
    license: str = ""
    representation: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelEntry:
        if (self.open_clip is None) == (self.hub is None):
            raise ValueError("give exactly one of 'open_clip' (arch, tag) or 'hub' (repo, file)")
        return self

    def hub_files(self) -> tuple[HubFile, list[str], bool | None]:
        """The repository, the file names to try in turn, and quick_gelu (known for open_clip tags)."""
        if self.hub is not None:
            if not self.hub.file:
                raise ConfigError(f"model {self.name!r}: 'hub' needs 'file' (the file in {self.hub.repo})")
            return self.hub, [self.hub.file], None
        import open_clip

        assert self.open_clip is not None
        cfg = open_clip.get_pretrained_cfg(self.open_clip.arch, self.open_clip.tag)
        location = (cfg or {}).get("hf_hub")
        if not location:
            raise HubError(f"model {self.name!r}: open_clip {open_clip.__version__} knows no hub location for "
                           f"{self.open_clip.arch} / {self.open_clip.tag}; upgrade open_clip_torch")
        # open_clip writes 'org/repo/' (its default file names) or 'org/repo/file'.
        repo, filename = os.path.split(location)
        return HubFile(repo=repo), [filename] if filename else list(OPEN_CLIP_FILES), cfg.get("quick_gelu")


def registry() -> dict[str, ModelEntry]:
    """The shipped entries plus those of ``$EVENTCLIP_MODELS_FILE`` (which win on a name clash)."""
    entries: dict[str, ModelEntry] = {}
    extra = os.environ.get("EVENTCLIP_MODELS_FILE")
    for path in [REGISTRY] + ([Path(extra)] if extra else []):
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the model registry ({exc.strerror}); "
                              "check EVENTCLIP_MODELS_FILE") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must map model names to entries")
        for name, fields in data.items():
            try:
                entries[str(name)] = ModelEntry.model_validate({**(fields or {}), "name": str(name)})
            except ValidationError as exc:
                where = "; ".join(f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ConfigError(f"{path}: {where}") from None
    return entries


def cache_dir() -> Path:
    """Where pulled models live: ``$EVENTCLIP_CACHE``, else ``$XDG_CACHE_HOME/eventclip``, else
    ``~/.cache/eventclip``."""
    if os.environ.get("EVENTCLIP_CACHE"):
        return Path(os.environ["EVENTCLIP_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eventclip"


def model_dir(name: str) -> Path:
    """The package folder a pulled ``name`` has (or will have)."""
    return cache_dir() / "models" / name


def pulled(name: str) -> Path | None:
    """The package folder of ``name`` when it has been pulled, else None."""
    folder = model_dir(name)
    return folder if (folder / "model.json").is_file() else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _copy_hint(name: str) -> str:
    return (f"on a machine with internet run `eventclip models pull {name}`, then copy the folder "
            f"{model_dir(name)} to the same place here (or anywhere, and pass that folder as --model)")


def resolve_model(value: str | os.PathLike | None) -> Path:
    """A ``--model`` value as a package folder: a folder path, ``default`` (or None: the bundled
    model) or the name of a pulled model. Names that are not pulled, and anything else, raise a
    ConfigError saying what to do."""
    if value is None or str(value) == DEFAULT_NAME:
        from eventclip.data import default_model_path

        return default_model_path()
    path = Path(value).expanduser()
    if path.is_dir():
        return path
    text = str(value)
    names = registry()
    if text in names:
        found = pulled(text)
        if found is not None:
            return found
        if _offline():
            raise ConfigError(f"--model {text}: not pulled, and HF_HUB_OFFLINE is set so it cannot be now: "
                              + _copy_hint(text))
        raise ConfigError(f"--model {text}: not pulled yet; run `eventclip models pull {text}` first "
                          f"(it is stored in {model_dir(text)})")
    if path.exists():
        raise ConfigError(f"--model {value}: is a file; a model package is a folder (make one with "
                          "`eventclip package import CHECKPOINT --out FOLDER`)")
    raise ConfigError(f"--model {value}: no such package folder, and not a model name "
                      f"(names: {DEFAULT_NAME}, {', '.join(names)}; see `eventclip models list`)")


def download(entry: ModelEntry, *, endpoint: str | None = None, progress: bool | None = None,
             say: Callable[[str], None] = print) -> tuple[Path, str, bool | None]:
    """Fetch the entry's weights into the cache (resuming a partial download) and verify them.

    Returns the file, how its checksum was verified, and quick_gelu when the source says it.
    ``endpoint`` overrides the hub's address (default ``$HF_ENDPOINT``, else huggingface.co);
    ``progress`` shows the download bar (default: when stderr is a terminal).
    """
    from eventclip._optional import require

    require("huggingface_hub", "torch", "downloading models")
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RemoteEntryNotFoundError

    repo, files, quick_gelu = entry.hub_files()
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        huggingface_hub.utils.enable_progress_bars()
    else:
        huggingface_hub.utils.disable_progress_bars()
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    where = endpoint or "https://huggingface.co"
    last: Exception | None = None
    for filename in files:
        say(f"downloading {repo.repo}/{filename} ({repo.revision}) from {where}")
        try:
            local = huggingface_hub.hf_hub_download(repo.repo, filename, revision=repo.revision,
                                                    cache_dir=str(cache_dir() / "downloads"), endpoint=endpoint)
        except RemoteEntryNotFoundError as exc:  # open_clip repositories hold one of two file names
            last = exc
            continue
        except LocalEntryNotFoundError as exc:
            raise HubError(f"model {entry.name!r}: {repo.repo}/{filename} could not be fetched from {where} "
                           f"({exc}); check the network, or {_copy_hint(entry.name)}") from exc
        except (HfHubHTTPError, OSError) as exc:
            raise HubError(f"model {entry.name!r}: downloading {repo.repo}/{filename} from {where} failed: {exc}. "
                           "Run the same command again to resume") from exc
        return Path(local), _verify(Path(local), repo, entry.name), quick_gelu
    raise HubError(f"model {entry.name!r}: {repo.repo} at {where} has none of {', '.join(files)} ({last})")


def _verify(local: Path, repo: HubFile, name: str) -> str:
    """Check the download's sha256 against the registry's, else the hub's LFS etag (a sha256)."""
    actual = sha256_file(local)
    blob = Path(os.path.realpath(local)).name  # the hub cache names blobs by their etag
    expected, source = (repo.sha256, "the registry") if repo.sha256 else (
        (blob, "the hub's LFS checksum") if re.fullmatch(r"[0-9a-f]{64}", blob) else (None, ""))
    if expected is None:
        return f"sha256 {actual} (no checksum published to compare with)"
    if actual != expected:
        os.unlink(os.path.realpath(local))
        raise HubError(f"model {name!r}: the download's sha256 is {actual}, but {source} says {expected}; the "
                       "file was deleted, run the pull again (a proxy or disk fault altered it)")
    return f"sha256 {actual} verified against {source}"


def pull(name: str, *, endpoint: str | None = None, finish: Callable[[Path], object] | None = None,
         force: bool = False, keep_download: bool = False, progress: bool | None = None,
         say: Callable[[str], None] = print) -> Path:
    """Download ``name`` and build its model package in the cache; returns the folder.

    ``finish`` runs on the complete package before it is moved into place (``eventclip models pull``
    passes the ONNX export, :func:`eventclip.exporters.onnx.export_onnx`): the model stage does not
    import the exporters, which come after it.

    Already pulled models are returned as they are unless ``force``. The package is written beside
    its final place and moved there only when complete, so an interrupted pull leaves no half
    package; the download itself resumes on the next pull. ``keep_download`` keeps the raw
    checkpoint in the cache's ``downloads`` folder (it is deleted once the package is built).
    """
    entries = registry()
    if name not in entries:
        raise ConfigError(f"no model named {name!r}; `eventclip models list` shows the names "
                          f"({', '.join(entries)})")
    entry = entries[name]
    target = model_dir(name)
    if pulled(name) is not None and not force:
        say(f"{name}: already pulled in {target} (use --force to fetch and build it again)")
        return target
    if _offline():
        raise HubError(f"model {name!r} is not pulled and HF_HUB_OFFLINE is set: {_copy_hint(name)}")
    checkpoint, checked, quick_gelu = download(entry, endpoint=endpoint, progress=progress, say=say)
    say(f"{checkpoint.name}: {checked}")
    partial = target.with_name(f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    say(f"building the model package in {target}")
    _build(entry, checkpoint, partial, quick_gelu, checked)
    if finish is not None:
        finish(partial)
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    if not keep_download:
        blob = Path(os.path.realpath(checkpoint))
        checkpoint.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
    say(f"{name}: ready in {target}; use it with --model {name}")
    return target


def _build(entry: ModelEntry, checkpoint: Path, folder: Path, quick_gelu: bool | None, checked: str) -> None:
    """The model package of a downloaded checkpoint (f_I left out: inference needs f_E and f_T)."""
    from eventclip.model.loaders import load_checkpoint

    try:
        model = load_checkpoint(checkpoint, kind=entry.kind, with_image_encoder=False, quick_gelu=quick_gelu,
                                representation=entry.representation)
    except EventclipError as exc:
        raise HubError(f"model {entry.name!r}: the downloaded {checkpoint.name} does not load ({exc})") from exc
    where = entry.hub.repo if entry.hub else f"open_clip {entry.open_clip.arch}/{entry.open_clip.tag}"  # type: ignore[union-attr]
    model.card = model.card.model_copy(update={
        "name": entry.name,
        "source": f"{model.card.source} from {where} via `eventclip models pull {entry.name}`; {checked}",
    })
    model.save_pretrained(folder)


def describe(entries: dict[str, ModelEntry]) -> list[dict[str, Any]]:
    """One row per registry entry for ``models list``: name, description, source, where it is pulled."""
    rows = []
    for name, e in entries.items():
        source = (f"{e.hub.repo}/{e.hub.file}" if e.hub is not None
                  else f"open_clip {e.open_clip.arch} {e.open_clip.tag}")  # type: ignore[union-attr]
        folder = pulled(name)
        rows.append({"name": name, "description": e.description, "source": source, "license": e.license,
                     "pulled": str(folder) if folder else None})
    return rows
