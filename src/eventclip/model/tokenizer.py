"""CLIP's byte-level BPE tokenizer without torch or open_clip.

Why: the daemon encodes prompts with the package's ``text_encoder.onnx`` under ONNX Runtime and must
not need the training stack. This tokenizer reads the BPE merges shipped in the model package
(``tokenizer/bpe_simple_vocab_16e6.txt.gz``) and gives exactly the token ids of open_clip's
``SimpleTokenizer`` with its default ``clean="lower"`` (ftfy fix, HTML unescape twice, whitespace
collapse, lower case), start/end-of-text tokens, zero padding and truncation that keeps the end token.
It needs only numpy, ``regex`` (for the ``\\p{L}``/``\\p{N}`` classes) and ``ftfy``.
"""

from __future__ import annotations

import gzip
import html
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from eventclip._optional import require
from eventclip.errors import EventclipError

DEFAULT_CONTEXT_LENGTH = 77
_N_MERGES = 49152 - 256 - 2
_SPECIAL = ("<start_of_text>", "<end_of_text>")


class TokenizerError(EventclipError):
    """The BPE vocabulary file is missing or unreadable; the message names it."""


@lru_cache
def _bytes_to_unicode() -> dict[int, str]:
    """Reversible map from utf-8 bytes to printable unicode characters (GPT-2/CLIP convention)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


class ClipTokenizer:
    """Token ids identical to open_clip's ``SimpleTokenizer`` (default ``clean="lower"``).

    ``vocab_path`` is the gzip'd merges file from the model package; ``context_length`` is the text
    tower's sequence length (77 for OpenAI CLIP, smaller for compact models).
    """

    def __init__(self, vocab_path: str | Path, context_length: int = DEFAULT_CONTEXT_LENGTH) -> None:
        self._re = require("regex", "onnx", "the CLIP tokenizer's unicode classes")
        self._ftfy = require("ftfy", "onnx", "the CLIP tokenizer's text cleaning")
        path = Path(vocab_path)
        try:
            lines = gzip.open(path).read().decode("utf-8").split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise TokenizerError(
                f"cannot read the BPE vocabulary {path}: {exc}. The model package must contain "
                "tokenizer/bpe_simple_vocab_16e6.txt.gz; re-save the package with save_pretrained"
            ) from exc
        merges = [tuple(m.split()) for m in lines[1 : _N_MERGES + 1]]
        if len(merges) != _N_MERGES or any(len(m) != 2 for m in merges):
            raise TokenizerError(
                f"{path} holds {len(merges)} BPE merges, expected {_N_MERGES} pairs: not a CLIP vocabulary"
            )
        byte_chars = list(_bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + list(_SPECIAL)
        self.encoder: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self.bpe_ranks: dict[tuple[str, str], int] = {m: i for i, m in enumerate(merges)}
        self.sot_token_id = self.encoder[_SPECIAL[0]]
        self.eot_token_id = self.encoder[_SPECIAL[1]]
        self.vocab_size = len(self.encoder)
        self.context_length = int(context_length)
        self._cache: dict[str, str] = {t: t for t in _SPECIAL}
        self._pat = self._re.compile(
            "|".join(_SPECIAL) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            self._re.IGNORECASE,
        )

    def _clean(self, text: str) -> str:
        text = html.unescape(html.unescape(self._ftfy.fix_text(text))).strip()
        return " ".join(text.split()).strip().lower()

    def _bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(a, b) for a, b in pairwise(word)}
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        out = " ".join(word)
        self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        """BPE ids of one string, without start/end tokens."""
        b2u = _bytes_to_unicode()
        ids: list[int] = []
        for token in self._pat.findall(self._clean(text)):
            token = "".join(b2u[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> np.ndarray:
        """(N, context_length) int64 ids: start, BPE ids, end, zero padding; long texts are cut, end kept."""
        if isinstance(texts, str):
            texts = [texts]
        length = int(context_length or self.context_length)
        out = np.zeros((len(texts), length), dtype=np.int64)
        for i, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > length:
                ids = ids[:length]
                ids[-1] = self.eot_token_id
            out[i, : len(ids)] = ids
        return out
