"""Safe YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets positions, silently keeps the last of two duplicate
keys, reads ``1e-3`` as a string and expands aliases without limit. dslc instead
composes the node tree (composition never constructs Python objects, so no tag can
run code), then builds plain dicts, lists and scalars itself while recording the
line and column of each value. Only the standard YAML types are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import Location, SpecSyntaxError

MAX_FILE_BYTES = 1_000_000
MAX_VALUES = 100_000  # values after alias expansion: stops "billion laughs" documents
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_FLOAT_12 = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)$")

Path_ = tuple  # a path into the document: keys (str) and list indices (int)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as ``1e-3`` as numbers."""


_Loader.add_implicit_resolver(_TAG + "float", _FLOAT_12, list("-+0123456789."))


@dataclass
class SourceMap:
    """Where each value of a loaded document sits in its file."""

    file: str
    values: dict[Path_, Location] = field(default_factory=dict)
    keys: dict[Path_, Location] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        """The position of ``path``, or of its nearest ancestor that exists in the file."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Location(self.file, 1, 1))


def load_yaml(path: str | Path) -> tuple[object, SourceMap]:
    """Read a YAML file into plain Python data plus a map of positions."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SpecSyntaxError(f"cannot read spec: {err.strerror}", Location(str(path), 1, 1)) from None
    return parse_yaml(raw, str(path))


def parse_yaml(raw: bytes | str, file: str = "<string>") -> tuple[object, SourceMap]:
    """Parse YAML text; see :func:`load_yaml`."""
    start = Location(file, 1, 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SpecSyntaxError(f"spec is {len(raw):,} bytes; the limit is {MAX_FILE_BYTES:,}", start)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            before = raw[:err.start].decode("utf-8")
            raise SpecSyntaxError(f"spec is not UTF-8 text (byte 0x{raw[err.start]:02x}); save it as UTF-8",
                                  _offset(file, before, len(before))) from None
    try:
        root = yaml.compose(raw, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        raise SpecSyntaxError(_yaml_message(err), _mark(file, _error_mark(err))) from None
    except yaml.reader.ReaderError as err:  # its str() spans two lines and names no line
        raise SpecSyntaxError(f"character U+{err.character:04X} is not allowed in YAML text (control characters "
                              "must be escaped in a quoted string)", _offset(file, raw, err.position)) from None
    except yaml.YAMLError as err:
        raise SpecSyntaxError(f"invalid YAML: {err}", start) from None
    if root is None or (root.tag == _TAG + "null" and root.value == ""):  # no document, or a bare '---'
        raise SpecSyntaxError("spec is empty; it needs at least 'name', 'input' and 'model'", start)
    builder = _Builder(SourceMap(file))
    return builder.build(root, (), 0), builder.source


def _mark(file: str, mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)


def _error_mark(err: yaml.MarkedYAMLError):
    """Where to show a YAML error: at the problem, unless the problem is the end of the file.

    A quote or bracket left open fails only at the end of the file; the place it was
    opened (the error's context) is where the user must look.
    """
    at_end = any(s in (err.problem or "") for s in ("end of stream", "<stream end>"))
    return (err.context_mark if at_end else None) or err.problem_mark or err.context_mark


def _offset(file: str, text: str, index: int) -> Location:
    """The line and column of character ``index`` of ``text`` (errors that give only an offset)."""
    before = text[:index]
    return Location(file, before.count("\n") + 1, index - before.rfind("\n"))


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    problem = (err.problem or err.context or "invalid YAML").strip()
    if "'\\t'" in problem or "\\t" in problem:
        return "tab character in indentation; YAML indents with spaces only"
    if "expected a single document" in (err.context or "") + problem:
        return "spec holds more than one YAML document ('---'); put one spec in each file"
    both = err.context and err.problem
    message = f"invalid YAML: {err.context}, {err.problem}" if both else f"invalid YAML: {problem}"
    return message + _indexed_name_hint(err)


def _indexed_name_hint(err: yaml.MarkedYAMLError) -> str:
    """A layer's k-th or named output (``chunk_1[1]``, ``lstm_1[h_n]``) written unquoted inside ``[...]`` or
    ``{...}`` breaks YAML's flow syntax."""
    mark = err.problem_mark or err.context_mark
    buffer = getattr(mark, "buffer", None)
    if "flow" not in (err.context or "") or not buffer:
        return ""
    line = buffer.split("\n")[mark.line] if mark.line < buffer.count("\n") + 1 else ""
    found = re.search(r"[A-Za-z_][\w.]*\[\w+\]", line)
    return (f"; to name an output of a layer with several ({found.group()}) inside [...] or {{...}}, quote it: "
            f"\"{found.group()}\"") if found else ""


class _Builder:
    """Turns composed YAML nodes into Python data, with limits and positions."""

    def __init__(self, source: SourceMap):
        self.source = source
        self.count = 0
        self.constructor = _Loader("")
        self.open: set[int] = set()  # collections being built: meeting one again means an alias of itself

    def build(self, node: yaml.Node, path: Path_, depth: int):
        where = _mark(self.source.file, node.start_mark)
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecSyntaxError(
                f"spec expands to more than {MAX_VALUES:,} values; are aliases (*name) nested too deeply?", where
            )
        if depth > MAX_DEPTH:
            raise SpecSyntaxError(f"spec nests deeper than {MAX_DEPTH} levels", where)
        self.source.values.setdefault(path, where)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, where)
        if id(node) in self.open:
            # An alias inside the value it names; located at that value's anchor (&name),
            # since the composer gives aliases no position of their own.
            raise SpecSyntaxError("recursive alias: this anchored value contains an alias (*name) of itself", where)
        self.open.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _TAG + "seq", where)
            value = [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        else:
            self._check_tag(node, _TAG + "map", where)
            value = self._mapping(node, path, depth)
        self.open.discard(id(node))
        return value

    def _scalar(self, node: yaml.ScalarNode, where: Location):
        if node.tag not in _SCALAR_TAGS:
            if node.style is None and self.constructor.resolve(yaml.ScalarNode, node.value, (True, False)) == node.tag:
                # No tag was written: YAML 1.1 read a plain value (2024-05-01, =) as a date or the like.
                raise SpecSyntaxError(f"'{node.value}' reads as a YAML {_short(node.tag)[2:]}, which specs do not "
                                      f"use; quote it (\"{node.value}\") if you mean text", where)
            raise SpecSyntaxError(f"YAML tag '{_short(node.tag)}' is not allowed; specs hold plain values only", where)
        return self.constructor.construct_object(node)

    def _check_tag(self, node: yaml.Node, expected: str, where: Location) -> None:
        if node.tag != expected:
            raise SpecSyntaxError(f"YAML tag '{_short(node.tag)}' is not allowed; specs hold plain values only", where)

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict:
        result: dict[str, object] = {}
        merged: dict[str, object] = {}
        for key_node, value_node in node.value:
            key_where = _mark(self.source.file, key_node.start_mark)
            if key_node.tag == _TAG + "merge":
                merged.update(self._merge(value_node, path, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                raise SpecSyntaxError("mapping keys must be plain names", key_where)
            key = key_node.value
            if key in result:
                raise SpecSyntaxError(f"duplicate key '{key}'; a later value would silently replace the earlier",
                                      key_where)
            self.source.keys[path + (key,)] = key_where
            result[key] = self.build(value_node, path + (key,), depth + 1)
        return {**merged, **result}

    def _merge(self, node: yaml.Node, path: Path_, depth: int) -> Mapping:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, object] = {}
        for source in reversed(sources):
            value = self.build(source, path, depth + 1)
            if not isinstance(value, dict):
                raise SpecSyntaxError("'<<' merges mappings only", _mark(self.source.file, source.start_mark))
            merged.update(value)
        return merged


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
