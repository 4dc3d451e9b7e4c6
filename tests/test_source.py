"""``dsl.source.parse_yaml``: safe YAML with positions, YAML 1.2 floats, merges and limits."""

from __future__ import annotations

from time import process_time

import pytest
import yaml

from dsl.errors import DslcError, Location, SpecSyntaxError
from dsl.source import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, SourceMap, parse_yaml


def parse(text: str):
    return parse_yaml(text, "spec.yaml")[0]


def error(text: str | bytes) -> SpecSyntaxError:
    with pytest.raises(SpecSyntaxError) as info:
        parse_yaml(text, "spec.yaml")
    return info.value


# --- values ---------------------------------------------------------------------------------


def test_yaml12_floats_are_numbers():
    """PyYAML's YAML 1.1 reads 1e-3 (no dot) as a string; a learning rate must be a float."""
    data = parse("a: 1e-3\nb: 1E+5\nc: -2.5e-4\nd: 3.0e2\ne: .5\nf: 1.0\n")
    assert data == {"a": 1e-3, "b": 1e5, "c": -2.5e-4, "d": 300.0, "e": 0.5, "f": 1.0}
    assert all(type(v) is float for v in data.values())


def test_plain_scalars_keep_their_types():
    data = parse("i: 3\nneg: -4\nt: true\nn: null\ns: relu\nq: '1e-3'\ndate: '2024-05-01'\n")
    assert data == {"i": 3, "neg": -4, "t": True, "n": None, "s": "relu", "q": "1e-3", "date": "2024-05-01"}
    assert type(data["i"]) is int


def test_merge_keys():
    data = parse(
        "base: &base {out_channels: 8, kernel_size: 3}\n"
        "conv: {<<: *base, kernel_size: 5}\n"
        "both: {<<: [{a: 1, b: 1}, {b: 2, c: 2}]}\n"
    )
    assert data["conv"] == {"out_channels": 8, "kernel_size": 5}  # explicit keys win over merged ones
    assert data["both"] == {"a": 1, "b": 1, "c": 2}  # in a merge list the earlier mapping wins


def test_aliases_within_limits():
    data = parse("args: &args {out_features: 8}\nmodel:\n  - linear: *args\n  - linear: *args\n")
    assert data["model"] == [{"linear": {"out_features": 8}}, {"linear": {"out_features": 8}}]
    assert data["model"][0]["linear"] is not data["model"][1]["linear"]  # built as separate values
    # 10 x 10 x 10 = 1,000 values through nested aliases is fine
    data = parse("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                 "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                 "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n")
    assert sum(len(row) for row in data["c"][0]) == 100 and len(data["c"]) == 10


def test_duplicate_keys_are_errors():
    err = error("name: a\ninput: {shape: [1]}\nname: b\n")
    assert "duplicate key 'name'" in err.message
    assert err.location == Location("spec.yaml", 3, 1)
    err = error("linear: {out_features: 8, bias: true, out_features: 4}\n")
    assert err.location == Location("spec.yaml", 1, 39)


# --- hostile documents ----------------------------------------------------------------------


def test_alias_bomb_is_refused_quickly():
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(levels) + "\n"  # 9**9 = 387,420,489 strings once expanded
    start = process_time()
    err = error(text)
    assert process_time() - start < 2.0  # CPU time: expanding it would take minutes; a busy machine must not fail this
    assert f"more than {MAX_VALUES:,} values" in err.message


@pytest.mark.parametrize("text", [
    "a: &a [*a]\n",
    "a: &a {b: *a}\n",
    "a: &a {<<: *a}\n",
    "model: &m\n  - relu\n  - [*m]\n",
])
def test_recursive_alias_is_refused(text):
    err = error(text)
    assert "recursive alias" in err.message
    assert err.location.line == 1 and err.location.col in (4, 8)  # the anchor


def test_deep_nesting_is_refused():
    depth = MAX_DEPTH + 5
    err = error("a: " + "[" * depth + "1" + "]" * depth + "\n")
    assert f"nests deeper than {MAX_DEPTH} levels" in err.message


def test_oversized_file_is_refused():
    err = error(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    assert "the limit is" in err.message
    assert err.location == Location("spec.yaml", 1, 1)


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system",
    "!!python/object/new:os.system",
])
def test_python_tags_run_nothing(tmp_path, tag):
    marker = tmp_path / "marker"
    text = f'x: {tag} ["touch {marker}"]\n'
    err = error(text)
    assert "is not allowed" in err.message and tag in err.message
    assert err.location == Location("spec.yaml", 1, 4)
    assert not marker.exists()


def test_python_tag_payload_is_live(tmp_path):
    """Control: the payload above really runs under an unsafe loader, so the test is not vacuous."""
    marker = tmp_path / "marker"
    yaml.unsafe_load(f'x: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert marker.exists()


@pytest.mark.parametrize("text", [
    "x: !!python/name:os.system ''\n",
    "x: !!python/module:os ''\n",
    "x: !!set {a: null}\n",
    "x: !!binary aGVsbG8=\n",
    "x: !custom 3\n",
])
def test_other_tags_are_refused(text):
    assert "is not allowed" in error(text).message


def test_implicit_timestamp_says_to_quote_it():
    err = error("description: 2024-05-01\n")
    assert "'2024-05-01' reads as a YAML timestamp" in err.message and "quote it" in err.message
    assert err.location == Location("spec.yaml", 1, 14)


# --- malformed text -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty(text):
    err = error(text)
    assert "spec is empty" in err.message
    assert err.location == Location("spec.yaml", 1, 1)


def test_tab_indentation():
    err = error("model:\n\t- relu\n")
    assert "tab character in indentation" in err.message
    assert err.location == Location("spec.yaml", 2, 1)


def test_two_documents():
    err = error("a: 1\n---\nb: 2\n")
    assert "more than one YAML document" in err.message
    assert err.location == Location("spec.yaml", 2, 1)


def test_not_utf8_is_located_at_the_byte():
    err = error("a: 1\nb: caf\u00e9 \u00e9\n".encode("latin-1"))
    assert "not UTF-8" in err.message and "0xe9" in err.message
    assert err.location == Location("spec.yaml", 2, 7)
    err = error("a: \u00e9\n".encode("utf-8") + b"b: \xff\n")  # the UTF-8 é is fine, 0xff is not
    assert err.location == Location("spec.yaml", 2, 4)


def test_control_character_is_one_located_line():
    err = error("a: 1\nb: x\x00y\n")
    assert err.location == Location("spec.yaml", 2, 5)
    assert "U+0000" in err.message and "\n" not in str(err)


def test_unclosed_quote_points_where_it_opens():
    err = error('a: 1\nb: "never closed\nc: 3\n')
    assert err.location == Location("spec.yaml", 2, 4)


def test_messages_quoting_user_text_stay_on_one_line():
    err = SpecSyntaxError("unknown key 'a\nb'", Location("f.yaml", 1, 2))
    assert str(err) == r"f.yaml:1:2: unknown key 'a\nb'"
    assert str(DslcError("first\u2028second\rthird")) == r"first\u2028second\rthird"


# --- positions ------------------------------------------------------------------------------


def test_positions_are_one_based():
    data, source = parse_yaml(
        "name: demo\n"
        "input:\n"
        "  shape: [1, 28, 28]\n"
        "model:\n"
        "  - conv2d: {out_channels: 8}\n"
        "  - relu\n",
        "spec.yaml",
    )
    assert data["model"][1] == "relu"
    assert isinstance(source, SourceMap) and source.file == "spec.yaml"
    at = lambda *path, key=False: (lambda loc: (loc.line, loc.col))(source.locate(path, key=key))  # noqa: E731
    assert at() == (1, 1)
    assert at("name") == (1, 7)
    assert at("name", key=True) == (1, 1)
    assert at("input", "shape") == (3, 10)
    assert at("input", "shape", key=True) == (3, 3)
    assert at("input", "shape", 2) == (3, 18)
    assert at("model", 0) == (5, 5)
    assert at("model", 0, "conv2d") == (5, 13)
    assert at("model", 0, "conv2d", "out_channels") == (5, 28)
    assert at("model", 0, "conv2d", "out_channels", key=True) == (5, 14)
    assert at("model", 1) == (6, 5)
    # a path that is not in the file falls back to its nearest ancestor that is
    assert at("model", 0, "conv2d", "kernel_size") == (5, 13)
    assert at("model", 0, "conv2d", "kernel_size", key=True) == (5, 13)
    assert at("train", "loss") == (1, 1)
