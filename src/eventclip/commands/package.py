"""``eventclip package``: turn a local CLIP or authors' checkpoint into a model package, or inspect one.

Why a command: users arrive with OpenAI's ``ViT-B-32.pt`` or Jeong et al.'s ``vitb.pt`` and need the
package (safetensors + card + tokenizer) that every other tool, exporter and the daemon read.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "package",
        help="make a model package from a local checkpoint, or show/verify one",
        description="'import' reads a checkpoint from a local file (OpenAI JIT .pt, state dict, open_clip, "
        "safetensors, or the paper authors' vitb.pt/vitl.pt), never the network, and writes a model package. "
        "'info' prints a package's card after checking every file's sha256.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    imp = sub.add_parser("import", help="checkpoint file -> model package folder")
    imp.add_argument("checkpoint", help="local checkpoint file")
    imp.add_argument("--out", required=True, help="package folder to write")
    imp.add_argument("--arch", default=None, help="open_clip architecture name (default: inferred from shapes)")
    imp.add_argument("--kind", default="auto", help="checkpoint layout (default: detected)")
    imp.add_argument("--with-image-encoder", action="store_true", help="also store the frozen image tower f_I")
    imp.set_defaults(func=run_import)
    info = sub.add_parser("info", help="verify and print a model package's card")
    info.add_argument("package", help="model package folder")
    info.add_argument("--json", action="store_true", help="print the whole card as JSON")
    info.set_defaults(func=run_info)


def run_import(args: argparse.Namespace) -> int:
    from eventclip.model.loaders import load_checkpoint

    model = load_checkpoint(args.checkpoint, args.arch, kind=args.kind, with_image_encoder=args.with_image_encoder)
    path = model.save_pretrained(args.out, include_image_encoder=args.with_image_encoder)
    print(f"{path}: {model.card.architecture}, input {model.card.input_size} px, embed {model.card.embed_dim}, "
          f"model hash {model.model_hash[:12]}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eventclip.model.card import ModelCard, verify_files

    folder = Path(args.package)
    card = ModelCard.read(folder)
    verify_files(folder, card)
    if args.json:
        print(json.dumps(card.model_dump(mode="json"), indent=2, sort_keys=True))
        return 0
    print(f"{folder}: {card.name} ({card.architecture}), input {card.input_size} px, embed {card.embed_dim}")
    print(f"  model hash   {card.model_hash}")
    print(f"  files        {len(card.files)} verified (sha256)")
    if card.representation:
        print(f"  representation {json.dumps(card.representation, sort_keys=True)}")
    if card.accuracy:
        print(f"  accuracy     {json.dumps(card.accuracy, sort_keys=True)}")
    return 0
