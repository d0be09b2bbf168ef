"""``eventclip models list|pull``: named real models (OpenAI CLIP, the authors' event encoders) in one command."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the models that can be pulled by name, or pull one (download, package, ONNX)",
        description="'list' names the models `--model NAME` accepts (OpenAI CLIP through open_clip's pretrained "
        "tags, the paper authors' event encoders) and which are pulled. 'pull NAME' downloads one from the "
        "Hugging Face Hub (resumable, sha256-checked), builds its model package and ONNX bundle in the cache "
        "($EVENTCLIP_CACHE, default ~/.cache/eventclip). Offline (HF_HUB_OFFLINE=1) it says what to copy over.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="the names, their sources and where they are pulled")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)
    pull = sub.add_parser("pull", help="download NAME and build its package and ONNX bundle")
    pull.add_argument("name", help="a name from `eventclip models list`")
    pull.add_argument("--endpoint", default=None, help="hub address (default $HF_ENDPOINT or https://huggingface.co)")
    pull.add_argument("--no-onnx", action="store_true", help="skip the ONNX export (the PyTorch backend still works)")
    pull.add_argument("--force", action="store_true", help="fetch and build again even when already pulled")
    pull.add_argument("--keep-download", action="store_true", help="keep the raw checkpoint in the cache")
    pull.set_defaults(func=run_pull)


def run_list(args: argparse.Namespace) -> int:
    import json

    from eventclip.model.hub import DEFAULT_NAME, cache_dir, describe, registry

    rows = describe(registry())
    if args.json:
        print(json.dumps({"cache": str(cache_dir()), "models": rows}, indent=1))
        return 0
    print(f"{DEFAULT_NAME:<18} bundled demo model (synthetic benchmark categories only); always available")
    for r in rows:
        state = f"pulled: {r['pulled']}" if r["pulled"] else "not pulled"
        print(f"{r['name']:<18} {r['description']}\n{'':<18} source {r['source']}; {state}")
    print(f"\npull one with `eventclip models pull NAME`; cache: {cache_dir()}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    import sys

    from eventclip.exporters.onnx import export_onnx
    from eventclip.model.hub import pull

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def onnx_bundle(folder: Path) -> None:
        say("exporting the ONNX bundle and checking its parity with PyTorch (about a minute for ViT-B/32)")
        export_onnx(folder)

    pull(args.name, endpoint=args.endpoint, finish=None if args.no_onnx else onnx_bundle, force=args.force,
         keep_download=args.keep_download, say=say)
    return 0
