"""The fast YAML loader returns exactly what yaml.safe_load returns."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.inventory.yamlload import safe_load

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "off", "~", "null", "0x1f", "010", "1e3", "2024-01-02"]),
    st.sampled_from(["10.0.0.1", "52:54:00:12:34:56", "n[001-004]", "- x", "a: b", "#c"]),
)
keys = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.sampled_from(["<", "="]))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans(), st.booleans())
def test_same_as_safe_load_on_dumped_data(data: Any, flow: bool, canonical: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, canonical=canonical, allow_unicode=True)
    assert safe_load(text) == yaml.safe_load(text)


SAMPLES = [
    "",
    "# only a comment\n",
    "a: 1\nb: [1, 2, {c: d}]\n",
    "base: &b {x: 1, y: [1, 2]}\nuse: *b\nlist: [*b, *b]\n",
    "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",  # merge key: full loader
    "s: !!str 123\ni: !!int '7'\nf: !!float '1.5'\nb: !!bool 'true'\n",
    "set: !!set {a, b}\n",
    "omap: !!omap [{a: 1}, {b: 2}]\n",
    "when: 2024-01-02\nat: 2024-01-02T03:04:05Z\n",
    "bin: !!binary aGVsbG8=\n",
    "? [a, b]\n: 1\n",  # unhashable key: the full loader's error
    "dup: 1\ndup: 2\n",
    "q: 'yes'\nd: \"no\"\np: yes\nt: ~\n",
    "- a\n- - b\n  - c\n- {}\n- []\n",
    "text: |\n  line one\n  line two\nfolded: >\n  one\n  two\n",
    "--- 1\n",
    "! x\n",
    "anchored: &a 5\nagain: *a\n",
    "seq: &s [1, 2]\nm: {k: *s}\n",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_as_safe_load_on_samples(text: str) -> None:
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        with pytest.raises(type(exc)):
            safe_load(text)
        return
    assert safe_load(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\n",  # unclosed flow sequence
        "a: 1\n b: 2\n",  # bad indentation
        "--- 1\n--- 2\n",  # two documents
        "x: *nope\n",  # unknown alias
        "x: !custom 1\n",  # unknown tag
        "a: 'open\n",
    ],
)
def test_errors_are_the_parsers_with_a_mark(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as fast:
        safe_load(text)
    with pytest.raises(yaml.YAMLError) as slow:
        yaml.safe_load(text)
    assert type(fast.value) is type(slow.value)
    fast_mark = getattr(fast.value, "problem_mark", None)
    slow_mark = getattr(slow.value, "problem_mark", None)
    assert (fast_mark and fast_mark.line) == (slow_mark and slow_mark.line)


def test_timestamp_is_constructed() -> None:
    assert safe_load("d: 2024-01-02") == {"d": datetime.date(2024, 1, 2)}


def test_big_flat_file_is_equal() -> None:
    data = {
        "nodes": [
            {"name": f"n{i:05d}", "profiles": ["compute"], "interfaces": [{"ip": f"10.0.{i}"}]}
            for i in range(2000)
        ]
    }
    text = yaml.safe_dump(data, sort_keys=False)
    assert safe_load(text) == data
