"""The torch-free CLIP tokenizer gives open_clip's token ids."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from eventclip.model.tokenizer import ClipTokenizer, TokenizerError

open_clip_tokenizer = pytest.importorskip("open_clip.tokenizer")

TEXTS = [
    "a photo of a dog.",
    "Café &amp; naïve  Résumé",
    "ﬁle ﬂow mojibake: â€œquotedâ€\x9d",
    "² Ⅳ 123 😀 it's they're we'll I'd",
    "",
    "  MIXED case \t\n tabs  ",
    "日本語のテキスト",
    "a " * 100,
    "<start_of_text> literal special tokens <end_of_text>",
]


@pytest.fixture(scope="module")
def pair():
    path = open_clip_tokenizer.default_bpe()
    return ClipTokenizer(path), open_clip_tokenizer.SimpleTokenizer(path)


@pytest.mark.parametrize("context_length", [77, 16, 4])
def test_same_ids_as_open_clip(pair, context_length):
    ours, ref = pair
    got = ours(TEXTS, context_length)
    want = ref(TEXTS, context_length).numpy()
    assert got.dtype == np.int64 and got.shape == (len(TEXTS), context_length)
    np.testing.assert_array_equal(got, want)


def test_truncation_keeps_end_token(pair):
    ours, _ = pair
    ids = ours(["word " * 50], 8)[0]
    assert ids[0] == ours.sot_token_id and ids[-1] == ours.eot_token_id


def test_missing_vocab_names_file(tmp_path):
    with pytest.raises(TokenizerError, match="nothere.txt.gz"):
        ClipTokenizer(tmp_path / "nothere.txt.gz")


def test_wrong_vocab_is_rejected(tmp_path):
    bad = tmp_path / "short.txt.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("#version\na b\n")
    with pytest.raises(TokenizerError, match="not a CLIP vocabulary"):
        ClipTokenizer(bad)
