"""`ConfigError`, and pydantic's validation errors turned into located, readable problems."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from daemon.yamlsrc import Path_, Problem, YamlSource


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every reason, located."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        n = len(problems)
        super().__init__(
            "\n".join(str(p) for p in problems) + f"\n{n} problem{'s' * (n != 1)} found"
        )


def _did_you_mean(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- pydantic errors -> located problems ----------------------------------------------------


def translate(err: ValidationError, src: YamlSource, model: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into `Problem`s with file:line and a readable message."""
    out: list[Problem] = []
    seen: set[str] = set()
    for e in err.errors():
        path = _data_path(src.data, e["loc"])
        msg = _message(e, model)
        problem = src.problem(path, msg)
        if str(problem) not in seen:
            seen.add(str(problem))
            out.append(problem)
    return out


def _data_path(data: Any, loc: tuple[int | str, ...]) -> Path_:
    """The part of pydantic's `loc` that names real data (drops union tags and wrappers).

    A key absent from the data is kept only as the last element: that is the missing or
    unknown field the message is about; anywhere else it is a union tag.
    """
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
        elif i == len(loc) - 1 and isinstance(part, str) and not _is_tag(part):
            path.append(part)
    return tuple(path)


def _is_tag(part: str) -> bool:
    return part.startswith(("function-", "union[", "tagged-union[")) or part in (
        "str",
        "list[str]",
        "date",
    )


def _message(e: Any, model: type[BaseModel]) -> str:
    etype = e["type"]
    loc = e["loc"]
    inp = e.get("input")
    if etype == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(model, loc[:-1])
        hint = _did_you_mean(key, allowed)
        listing = f"; allowed here: {', '.join(sorted(allowed))}" if allowed else ""
        return f"unknown field {key!r}{hint}{listing}"
    if etype == "missing":
        return f"missing required field {loc[-1]!r}"
    if etype in ("value_error", "assertion_error"):
        return str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if etype == "union_tag_invalid":
        ctx = e.get("ctx", {})
        return f"type {ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    if etype == "union_tag_not_found":
        return "missing required field 'type'"
    if etype == "literal_error":
        return f"{inp!r} is not allowed; use {e['ctx']['expected']}"
    if etype == "string_pattern_mismatch":
        return f"{inp!r} does not match the pattern {e['ctx']['pattern']}"
    if etype in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (key: value), got {_short(inp)}"
    return f"{_short(inp)}: {e['msg']}"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 60 else text[:57] + "..."


def _fields_at(model: Any, loc: tuple[int | str, ...]) -> list[str]:
    """Field names (by alias) of the model found by walking `loc` from `model`."""
    node: Any = model
    for part in loc:
        node = _step(node, part)
        if node is None:
            return []
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        models = [a for a in get_args(tp) if a is not type(None)]
        models = [_unwrap(a) for a in models]
        if len(models) == 1:
            return models[0]
        return tuple(models)
    return tp


def _step(node: Any, part: int | str) -> Any:
    node = _unwrap(node)
    if isinstance(node, tuple):  # a union: pick the member named by a tag, or the only model
        named = [m for m in node if isinstance(m, type) and _tag_of(m) == part]
        if named:
            return named[0]
        for m in node:
            found = _step(m, part)
            if found is not None:
                return found
        return None
    origin = get_origin(node)
    if origin is list and isinstance(part, int):
        return get_args(node)[0]
    if origin is dict:
        return get_args(node)[1]
    if isinstance(node, type) and issubclass(node, BaseModel):
        for n, f in node.model_fields.items():
            if part in (n, f.alias):
                return f.annotation
    return None


def _tag_of(model: type) -> str | None:
    if issubclass(model, BaseModel) and "type" in model.model_fields:
        ann = model.model_fields["type"].annotation
        args = get_args(ann)
        if args:
            return str(args[0])
    return None
