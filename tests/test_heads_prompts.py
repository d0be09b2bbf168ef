"""Prompt sets: schema, errors with file/line/field, ensembles, the on-disk text-embedding cache."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from eventclip.heads.prompts import PromptsError, cached_text_embeddings, embed_prompts, load_prompts, parse_prompts

EXAMPLES = Path(__file__).resolve().parents[1] / "zero_shot_prompts"


@pytest.mark.parametrize(("name", "n_classes", "has_anomaly"),
                         [("ncaltech101", 101, False), ("nmnist", 10, False), ("surveillance", 7, True)])
def test_shipped_examples_validate(name, n_classes, has_anomaly):
    prompts = load_prompts(EXAMPLES / f"{name}.yaml")
    assert len(prompts.classes) == n_classes
    assert (prompts.anomaly is not None) == has_anomaly


def test_prompts_expand_names_synonyms_and_own_templates():
    p = parse_prompts(
        'templates: ["a photo of a {}.", "an event image of a {}."]\n'
        "classes:\n"
        "  - name: car_side\n    synonyms: [side car]\n"
        "  - {name: dog, templates: ['a sketch of a {}']}\n"
        "  - cat\n"
    )
    assert p.labels == ["car_side", "dog", "cat"]
    assert p.prompts_for(p.classes[0]) == ["a photo of a car side.", "an event image of a car side.",
                                           "a photo of a side car.", "an event image of a side car."]
    assert p.prompts_for(p.classes[1]) == ["a sketch of a dog"]
    assert p.top_k == 5 and p.anomaly is None


@pytest.mark.parametrize(("text", "expected"), [
    ("classes: []\n", r"p\.yaml:1: classes: the class list is empty"),
    ("top_k: 3\nclasses:\n  - dog\n  - cat\n  - name: Dog\n",
     r"p\.yaml:5: classes\[2\]\.name: duplicate class name 'Dog'"),
    ("classes:\n  - dog\n  - {name: cat, templates: ['no slot']}\n",
     r"p\.yaml:3: classes\[1\]\.templates: .*no '\{\}'"),
    ("classes: [a, b\n", r"p\.yaml:2: not valid YAML"),
    ("- a\n- b\n", r"p\.yaml:1: the top level must be a mapping"),
    ("classes: [dog]\nanomaly:\n  normal: []\n  abnormal: [x]\n", r"p\.yaml:3: anomaly\.normal:"),
    ("classes: [dog]\ntop_k: 0\n", r"p\.yaml:2: top_k:"),
    ("classes: [dog]\ncolour: red\n", r"p\.yaml:2: colour: Extra inputs are not permitted"),
    ('templates: ["a {}"]\n', r"p\.yaml:1: classes: Field required"),
])
def test_bad_prompts_name_line_and_field(text, expected):
    with pytest.raises(PromptsError, match=expected):
        parse_prompts(text, "p.yaml")


def test_every_problem_is_reported_each_with_its_line_and_field():
    """One pass over a broken file lists all of its problems, not only the first."""
    text = ("templates: ['no slot']\n"          # 1
            "classes:\n"                        # 2
            "  - dog\n"                         # 3
            "  - {name: cat, colour: red}\n"    # 4
            "  - Dog\n"                         # 5
            "  - cat\n"                         # 6
            "top_k: 0\n"                        # 7
            "anomaly: {normal: [], abnormal: [x]}\n")  # 8
    with pytest.raises(PromptsError) as info:
        parse_prompts(text, "p.yaml")
    lines = str(info.value).splitlines()
    assert lines[0] == "p.yaml: 6 problems:"
    expected = [r"p\.yaml:1: templates: .*no '\{\}'", r"p\.yaml:4: classes\[1\]\.colour: Extra inputs",
                r"p\.yaml:5: classes\[2\]\.name: duplicate class name 'Dog' \(first at classes\[0\]\)",
                r"p\.yaml:6: classes\[3\]\.name: duplicate class name 'cat' \(first at classes\[1\]\)",
                r"p\.yaml:7: top_k:", r"p\.yaml:8: anomaly\.normal:"]
    body = lines[1:]
    for pattern in expected:
        assert sum(bool(re.match(r"  " + pattern, line)) for line in body) == 1, (pattern, body)
    assert len(body) == 6 and body == sorted(body, key=lambda line: int(line.split(":")[1]))  # in file order


def test_unreadable_file_is_named(tmp_path):
    with pytest.raises(PromptsError, match="absent.yaml: cannot read"):
        load_prompts(tmp_path / "absent.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PromptsError, match="bin.yaml"):
        load_prompts(tmp_path / "bin.yaml")


class CountingEncoder:
    """A deterministic text encoder: a fixed random vector per distinct prompt (so ensembles are checkable)."""

    def __init__(self, dim: int = 16) -> None:
        self.dim, self.calls, self.table = dim, 0, {}

    def __call__(self, prompts: list[str]) -> np.ndarray:
        self.calls += 1
        out = []
        for p in prompts:
            if p not in self.table:
                self.table[p] = np.random.default_rng(abs(hash(p)) % 2**32).standard_normal(self.dim)
            out.append(self.table[p] * 3.0)  # not unit length: embed_prompts must normalise
        return np.stack(out)


def test_ensemble_is_mean_of_unit_embeddings_renormalised():
    p = parse_prompts("templates: ['a {}', 'the {}']\nclasses: [dog, cat]\n"
                      "anomaly: {normal: [calm], abnormal: [fire, fall]}\n")
    enc = CountingEncoder()
    emb = embed_prompts(p, enc)
    unit = {k: v / np.linalg.norm(v) for k, v in enc.table.items()}
    want = unit["a dog"] + unit["the dog"]
    np.testing.assert_allclose(emb.classes[0], want / np.linalg.norm(want), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(emb.classes, axis=1), 1.0, atol=1e-6)
    assert emb.normal.shape == (1, 16) and emb.abnormal.shape == (2, 16)
    np.testing.assert_allclose(emb.abnormal[1], unit["fall"], atol=1e-6)


def test_cache_reuses_by_model_and_prompts_hash(tmp_path):
    p = parse_prompts("classes: [dog, cat]\n")
    enc = CountingEncoder()
    a = cached_text_embeddings(p, enc, "model-a", tmp_path)
    b = cached_text_embeddings(p, enc, "model-a", tmp_path)
    assert enc.calls == 1 and np.array_equal(a.classes, b.classes)
    cached_text_embeddings(p, enc, "model-b", tmp_path)
    assert enc.calls == 2
    cached_text_embeddings(parse_prompts("classes: [dog, cow]\n"), enc, "model-a", tmp_path)
    assert enc.calls == 3
    cached_text_embeddings(parse_prompts("# reporting only\nclasses: [dog, cat]\ntop_k: 1\n"), enc, "model-a", tmp_path)
    assert enc.calls == 3  # top_k and comments do not change embeddings: cache hit
    assert len(list(tmp_path.glob("*.npz"))) == 3
    for f in tmp_path.glob("*.npz"):  # a corrupt entry is recomputed, not trusted
        f.write_bytes(b"junk")
    cached_text_embeddings(p, enc, "model-a", tmp_path)
    assert enc.calls == 4
