"""Parsing the ``op: {args}`` form used by layers, losses and optimizers.

A choice is a bare name (``relu``) or a mapping with exactly one key whose value
holds the arguments (``conv2d: {out_channels: 32}``). Errors are raised as one
pydantic error whose context carries the path inside the choice, so the loader can
point at the exact key in the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from .errors import did_you_mean
from .names import unknown_name
from .types import Params


def choice_error(message: str, subpath: tuple = (), at_key: bool = False) -> PydanticCustomError:
    return PydanticCustomError("dslc", "{message}", {"message": message, "subpath": subpath, "at_key": at_key})


def split_choice(value, kind: str, names: Mapping, examples: tuple[str, str]) -> tuple[str, dict]:
    """``'relu'`` -> ('relu', {}); ``{'conv2d': {...}}`` -> ('conv2d', {...}).

    ``examples`` are a bare and a keyed name for the error message.
    """
    if isinstance(value, str):
        name, args, keyed = value, {}, False
    elif isinstance(value, dict) and len(value) == 1:
        (name, args), keyed = next(iter(value.items())), True
    else:
        raise choice_error(f"each {kind} is a name ('{examples[0]}') or a mapping with one key "
                           f"({examples[1]}: {{...}}); got {_preview(value)}")
    if name not in names:
        raise choice_error(unknown_name(kind, name), (name,) if keyed else (), keyed)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise choice_error(f"the arguments of {name} must be a mapping ({name}: {{key: value}}); got {_preview(args)}",
                           (name,))
    return name, dict(args)


def within(prefix: tuple, parse, *args):
    """``parse(*args)``, its ``choice_error`` re-raised with the path under ``prefix``."""
    try:
        return parse(*args)
    except PydanticCustomError as err:
        ctx = err.context or {}
        raise choice_error(ctx.get("message", str(err)), prefix + tuple(ctx.get("subpath", ())),
                           ctx.get("at_key", False)) from None


def validate_params(schema: type[Params], args: dict, prefix: tuple, what: str) -> Params:
    """Validates arguments, re-raising the first problem located at its key."""
    try:
        return schema.model_validate(args)
    except ValidationError as err:
        errors = err.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(first["loc"])
        if first["type"] == "extra_forbidden":
            key = str(loc[-1])
            raise choice_error(f"unknown key '{key}' for {what}{did_you_mean(key, schema.model_fields)}; "
                               f"valid keys: {', '.join(schema.model_fields)}", prefix + loc, True) from None
        raise choice_error(describe_error(first, what), prefix + loc) from None


def describe_error(error: dict, what: str = "") -> str:
    """One readable sentence for a pydantic error dict; ``what`` names the enclosing section."""
    loc = list(error["loc"])
    subject = " ".join(filter(None, [what, format_path(loc)]))
    # pydantic names the value's type ("List should have at least 1 item after validation"); the
    # subject already says which value, so drop it.
    message = re.sub(r"^(Input|String|List|Tuple|Dictionary) should", "should",
                     error["msg"].removeprefix("Value error, ")).replace(" after validation", "")
    if error["type"] == "missing":
        section = " ".join(filter(None, [what, format_path(loc[:-1])]))
        return f"missing required key '{loc[-1]}'" + (f" in {section}" if section else "")
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return f"{subject} must be a mapping of keys to values; got {_preview(error['input'])}"
    if not loc:
        return f"{subject}: {message}"
    return f"{subject} {message}" + ("" if "got" in message else f" (got {_preview(error['input'])})")


def format_path(loc) -> str:
    """('input', 'shape', 1) -> 'input.shape[1]'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _preview(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
