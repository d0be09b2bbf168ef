"""CLIP's byte-pair-encoding tokenizer in plain Python (numpy + stdlib), reading the BPE vocab file.

Why our own: the model package carries ``bpe_simple_vocab_16e6.txt.gz`` so that prompts can be
tokenised later on a machine with only numpy and ONNX Runtime (the daemon), without torch or
open_clip. Output matches ``open_clip.tokenize`` for ordinary text (tested); differences: no
``ftfy`` repair of mojibake, and Python's ``re`` classes stand in for ``\\p{L}``/``\\p{N}`` (rare
non-decimal numerals such as Roman-numeral code points split differently).
"""

from __future__ import annotations

import gzip
import html
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

SOT, EOT = "<start_of_text>", "<end_of_text>"
N_MERGES = 49152 - 256 - 2
_SPLIT = re.compile(
    r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+", re.IGNORECASE
)


def default_bpe_path() -> Path:
    """open_clip's copy of the vocab file (used when building a package; packages carry their own)."""
    import open_clip.tokenizer

    return Path(open_clip.tokenizer.default_bpe())


@lru_cache(maxsize=1)
def _byte_alphabet() -> dict[int, str]:
    """Map every byte to a printable unicode character, as GPT-2/CLIP BPE does (reversible).

    Insertion order is the vocabulary order: printable bytes first, then the remapped rest.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in keep}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + k) for k, b in enumerate(others)})
    return table


class ClipTokenizer:
    """Turn prompts into (N, context_length) int64 token ids: <sot> tokens <eot>, zero padded."""

    def __init__(self, bpe_path: str | Path | None = None, context_length: int = 77) -> None:
        path = Path(bpe_path) if bpe_path is not None else default_bpe_path()
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")[1 : N_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        alphabet = list(_byte_alphabet().values())
        vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges] + [SOT, EOT]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.context_length = context_length
        self.sot_id, self.eot_id = self.encoder[SOT], self.encoder[EOT]
        self._cache: dict[str, list[str]] = {}

    def _bpe(self, word: str) -> list[str]:
        """Greedily merge the lowest-ranked adjacent pair until none is in the merge table."""
        if word in self._cache:
            return self._cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            rank, i = min((self.ranks.get(pair, N_MERGES + 1), k) for k, pair in enumerate(zip(parts, parts[1:])))
            if rank > N_MERGES:
                break
            first, second = parts[i], parts[i + 1]
            merged: list[str] = []
            j = 0
            while j < len(parts):
                if j < len(parts) - 1 and parts[j] == first and parts[j + 1] == second:
                    merged.append(first + second)
                    j += 2
                else:
                    merged.append(parts[j])
                    j += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """Token ids of one string (no <sot>/<eot>), after CLIP's cleaning: unescape, squash spaces, lower."""
        text = html.unescape(html.unescape(text))
        text = re.sub(r"\s+", " ", text).strip().lower()
        table = _byte_alphabet()
        ids: list[int] = []
        for piece in _SPLIT.findall(text):
            word = "".join(table[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(word))
        return ids

    def __call__(self, prompts: list[str] | str) -> np.ndarray:
        """(N, context_length) int64; a prompt too long is cut and still ends with <eot>."""
        if isinstance(prompts, str):
            prompts = [prompts]
        out = np.zeros((len(prompts), self.context_length), dtype=np.int64)
        for row, prompt in enumerate(prompts):
            ids = [self.sot_id] + self.encode(prompt) + [self.eot_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_id
            out[row, : len(ids)] = ids
        return out
