"""``eventclip retrieve build|search|eval``: cross-modal retrieval over event recordings, images, texts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from eventclip.commands._recording import add_backend_option, add_geometry_option

if TYPE_CHECKING:
    from eventclip.events import Geometry


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "retrieve",
        help="embedding indexes and cross-modal search (event<->text/image/event), Recall@k on paired data",
        description="build: embed a collection (event files, images, texts, or external .npy embeddings such as "
        "ImageBind audio/depth) into an index file. search: query an index with texts, event files, images or "
        "embeddings. eval: Recall@1/5/10 in every direction on a paired dataset folder.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    b = sub.add_parser("build", help="embed a collection into an index (.npz)")
    b.add_argument("inputs", nargs="*", help="event files or folders, image files, or texts (per --modality)")
    b.add_argument("--modality", required=True, choices=("event", "image", "text", "audio", "depth"))
    b.add_argument("--model", default=None, help="model package (not needed for --embeddings)")
    b.add_argument("--embeddings", default=None, help="external embeddings .npy (N, D) instead of inputs")
    b.add_argument("--ids", default=None, help="text file with one id per row of --embeddings")
    b.add_argument("--window-us", type=int, default=None, help="events: centred window (µs; default the card's)")
    add_geometry_option(b, "events: WIDTHxHEIGHT for files that do not say (files that state another size are "
                        "refused)")
    add_backend_option(b)
    b.add_argument("--out", required=True, help="index file to write (.npz)")
    b.set_defaults(func=run_build)

    s = sub.add_parser("search", help="query an index")
    s.add_argument("--index", required=True, help="index file from 'retrieve build'")
    s.add_argument("--model", default=None, help="model package that embeds the queries")
    q = s.add_mutually_exclusive_group(required=True)
    q.add_argument("--text", nargs="+", help="text queries")
    q.add_argument("--events", nargs="+", help="event-file queries")
    q.add_argument("--images", nargs="+", help="image queries (needs f_I in the package)")
    q.add_argument("--embeddings", help="query embeddings .npy (N, D)")
    s.add_argument("--k", type=int, default=5, help="results per query")
    s.add_argument("--window-us", type=int, default=None, help="event queries: centred window (µs)")
    add_geometry_option(s, "event queries: WIDTHxHEIGHT for files that do not say")
    s.add_argument("--faiss", action="store_true", help="search with FAISS (pip install faiss-cpu)")
    add_backend_option(s)
    s.add_argument("--json", action="store_true", help="one JSON object per query")
    s.set_defaults(func=run_search)

    e = sub.add_parser("eval", help="Recall@1/5/10 on a paired dataset folder (classes.json + index.csv)")
    e.add_argument("--root", required=True, help="paired dataset folder (e.g. from 'eventclip dataset synth')")
    e.add_argument("--model", required=True, help="model package")
    e.add_argument("--subset", choices=("all", "seen", "unseen"), default="all",
                   help="only the classes the model card lists as seen / unseen in training")
    e.add_argument("--split", choices=("test", "train", "all"), default="all", help="which samples form the collection")
    e.add_argument("--window-us", type=int, default=None, help="centred window per recording (µs; default the card's)")
    e.add_argument("--out", default="retrieval", help="folder for retrieval.json and retrieval.md")
    e.set_defaults(func=run_eval)


def _event_files(inputs: list[str]) -> list:
    from pathlib import Path

    from eventclip.errors import ConfigError
    from eventclip.io import FORMATS

    exts = {e.lower() for spec in FORMATS.values() for e in spec.extensions}
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in exts)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such event file or folder")
    if not files:
        raise ConfigError(f"no event files found in {inputs}")
    return files


def _need_model(args):
    from eventclip.errors import ConfigError
    from eventclip.model.hub import resolve_model

    if args.model is None:
        raise ConfigError("--model is needed to embed events, images or texts")
    return str(resolve_model(args.model))


def _embed(modality: str, inputs: list[str], args) -> tuple:
    """(embeddings, ids, meta) of inputs of one modality with the package in args.model."""
    from pathlib import Path

    from eventclip.datasets.base import EventSlice
    from eventclip.errors import ConfigError
    from eventclip.model.card import ModelCard
    from eventclip.retrieval import encoders
    from eventclip.stream import open_encoder

    model = _need_model(args)
    card = ModelCard.read(Path(model))
    meta = {"model": str(Path(model).resolve()), "model_hash": card.model_hash}
    if modality == "event":
        rep = card.representation_model()
        files = _event_files(inputs)
        window = args.window_us or rep.window_us
        emb = encoders.embed_event_files(files, open_encoder(model, args.backend), rep,
                                         event_slice=EventSlice(window_us=window), geometry=_geometry(args, files))
        return emb, [str(f) for f in files], {**meta, "window_us": window}
    if modality == "image":
        from eventclip.model.clip import EventClip

        return (encoders.embed_images(inputs, EventClip.from_pretrained(model, with_image_encoder=True)),
                list(inputs), meta)
    if modality == "text":
        return encoders.embed_texts(inputs, open_encoder(model, args.backend).encode_text), list(inputs), meta
    raise ConfigError(f"{modality} inputs cannot be embedded by an eventclip package; pass --embeddings NPY from an "
                      "ImageBind-compatible encoder (docs/evaluation.md)")


def _geometry(args: argparse.Namespace, files: list) -> Geometry | None:
    """The ``--geometry`` for event files that do not state their sensor size; ConfigError naming the
    first file that states another one (its frames would be drawn on the wrong grid)."""
    from eventclip.commands._recording import geometry_arg
    from eventclip.errors import ConfigError
    from eventclip.events import Geometry
    from eventclip.io import open_events
    from eventclip.io.errors import GeometryError

    g = geometry_arg(args)
    if g is None:
        return None
    given = Geometry(*g)
    for path in files:
        try:
            with open_events(path) as stream:
                stated, source = stream.geometry, stream.metadata.get("geometry_source")
        except GeometryError:
            continue  # states no size: --geometry supplies it
        if source != "scan" and stated != given:  # 'scan': the DAT reader's guess from the events, not a statement
            raise ConfigError(f"{path}: the file says its sensor is {stated}, but --geometry is {given}; leave "
                              "--geometry out for files that state their size, or embed recordings of one size")
    return given


def run_build(args: argparse.Namespace) -> int:
    from eventclip.errors import ConfigError
    from eventclip.retrieval.encoders import load_external
    from eventclip.retrieval.index import EmbeddingIndex

    if args.embeddings:
        if args.inputs:
            raise ConfigError("give inputs or --embeddings, not both")
        emb, ids = load_external(args.embeddings, args.ids)
        meta = {"external": str(args.embeddings)}
    else:
        if not args.inputs:
            raise ConfigError("nothing to index: give inputs or --embeddings")
        emb, ids, meta = _embed(args.modality, args.inputs, args)
    path = EmbeddingIndex(emb, ids, args.modality, meta).save(args.out)
    print(f"{path}: {len(ids)} {args.modality} embeddings of dimension {emb.shape[1]}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    import json

    from eventclip.errors import ConfigError
    from eventclip.retrieval.encoders import load_external
    from eventclip.retrieval.index import EmbeddingIndex

    if args.k <= 0:
        raise ConfigError(f"--k must be > 0, got {args.k}")
    index = EmbeddingIndex.load(args.index, "faiss" if args.faiss else "numpy")
    if args.embeddings:
        queries, names = load_external(args.embeddings)
    else:
        modality, inputs = next((m, v) for m, v in (("text", args.text), ("event", args.events),
                                                    ("image", args.images)) if v)
        queries, names, _ = _embed(modality, inputs, args)
    res = index.search(queries, args.k)
    for name, ids, scores in zip(names, res.ids, res.scores, strict=True):
        if args.json:
            print(json.dumps({"query": name, "results": [{"id": i, "score": round(float(s), 6)}
                                                         for i, s in zip(ids, scores, strict=True)]}))
        else:
            print(f"{name}")
            for rank, (i, s) in enumerate(zip(ids, scores, strict=True), start=1):
                print(f"  {rank:>3}. {s:+.4f}  {i}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from eventclip.model.hub import resolve_model

    args.model = str(resolve_model(args.model))
    from pathlib import Path

    from eventclip.commands.eval import _subset
    from eventclip.datasets import load_dataset
    from eventclip.datasets.base import PROMPT_TEMPLATES, EventSlice
    from eventclip.eval.protocols import class_text_embeddings, embed_samples
    from eventclip.eval.report import write_json
    from eventclip.model.card import ModelCard
    from eventclip.model.clip import EventClip
    from eventclip.retrieval.encoders import embed_images
    from eventclip.retrieval.paired import markdown_table, paired_recall
    from eventclip.stream import open_encoder

    card = ModelCard.read(Path(args.model))
    rep = card.representation_model()
    ds = _subset(load_dataset("folder", args.root), card, args.subset)
    samples = {"test": ds.test, "train": ds.train, "all": ds.train + ds.test}[args.split]
    encoder = open_encoder(args.model, "torch")
    window = args.window_us or rep.window_us
    emb = embed_samples(samples, encoder, rep, ds.geometry, EventSlice(window_us=window))
    text = class_text_embeddings(encoder.encode_text, ds.texts, PROMPT_TEMPLATES)
    images = None
    if "image_encoder.safetensors" in card.files:
        images = embed_images([s.image for s in samples],
                              EventClip.from_pretrained(args.model, with_image_encoder=True))
    table = paired_recall(emb.embeddings, emb.labels, text, images)
    md = markdown_table(table)
    cmd = (f"eventclip retrieve eval --root {args.root} --model {args.model} --subset {args.subset} "
           f"--split {args.split} --window-us {window} --out {args.out}")
    out = Path(args.out)
    write_json(out / "retrieval.json", {"command": cmd, "model": {"path": str(Path(args.model).resolve()),
               "hash": card.model_hash}, "classes": ds.classes, "n_recordings": len(samples),
               "notes": ds.notes, "recall": table})
    (out / "retrieval.md").write_text(f"`{cmd}`\n\n{md}\n")
    print(md)
    print(f"wrote {out / 'retrieval.json'} and {out / 'retrieval.md'}")
    return 0
