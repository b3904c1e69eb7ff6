"""YAML reading with strict, key-path-naming errors, and a typed dataclass loader.

PyYAML follows YAML 1.1, where `2e9` and `1e-3` are strings; configs are written by people, so any token that
Python's `float()` accepts (and that is not an int or a bool) is read as a float here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """Bad user input: names the file and the key path, and says what is allowed. The CLI exits 2 on it."""

    def __init__(self, path: str, message: str, file: str | Path | None = None):
        self.path = path
        self.message = message
        self.file = str(file) if file is not None else None
        where = f"{self.file}: " if self.file else ""
        key = f"{path}: " if path else ""
        super().__init__(f"{where}{key}{message}")

    def in_file(self, file: str | Path) -> ConfigError:
        return ConfigError(self.path, self.message, file)


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$|^[-+]?(\d+\.\d*|\.\d+)$")


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _no_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_yaml_text(text: str, file: str | Path | None = None) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError("", f"not valid YAML ({str(e).splitlines()[0]}{_mark(e)})", file) from None


def _mark(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def load_yaml_file(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", "no such file", p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("", f"cannot be read ({e})", p) from None
    if not text.strip():
        raise ConfigError("", "the file is empty", p)
    return load_yaml_text(text, p)


def is_preset_name(spec: str | Path) -> bool:
    """Wherever a preset or a file is accepted (CONFIG, SPACE): a name with no path separator and no .yaml/.yml
    suffix is a preset; anything else is a path. So a file or folder in the working directory never shadows a
    preset: `./demo` is the file, `demo` the preset."""
    text = str(spec)
    return "/" not in text and os.sep not in text and not text.endswith((".yaml", ".yml"))


def check_preset(name: str, kind: str, names: list[str], others: dict[str, list[str]] | None = None) -> str:
    """`name` (a preset by `is_preset_name`) when it is one of `names`; otherwise bad input that says what is
    allowed and, where the name is ambiguous, what else it could have meant. A file of that name in the working
    directory is not read: a warning says so."""
    local = Path(name)
    rule = "a name without a path separator or a .yaml suffix is a preset"
    hint = ("" if not local.exists() else f"; ./{name} is a folder here ({rule})" if local.is_dir()
            else f"; ./{name} is a file here: write ./{name} to read it ({rule})")
    if name not in names:
        other = next((f"; {name!r} is a {k} preset, not a {kind} preset" for k, ns in (others or {}).items()
                      if name in ns), "")
        raise ConfigError("", f"unknown {kind} preset {name!r} ({kind} presets: {', '.join(names)}){other}{hint}")
    if local.is_file():
        warnings.warn(f"{name!r} is the {kind} preset; the file ./{name} is not read (write ./{name} to read it)",
                      stacklevel=3)
    return name


class _Dumper(yaml.SafeDumper):
    pass


def _float_repr(dumper: yaml.SafeDumper, value: float) -> yaml.ScalarNode:
    # repr() round-trips exactly and our loader reads `1e-05` back as a float.
    text = repr(value) if value == value and abs(value) != float("inf") else yaml.SafeDumper.represent_float(
        dumper, value
    ).value
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(float, _float_repr)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=120)


# ---------------------------------------------------------------------------------------------------------------
# Typed loading of nested dataclasses


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of name to {_type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(path, f"{value!r} is not allowed (allowed: {_type_name(tp)})")
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:  # an arm whose checks fail does not match (a Range with low > high is "not a list or a mapping")
                return validate(_coerce(value, arg, path), path)
            except ConfigError:
                continue
        raise ConfigError(path, f"{value!r} is not {_type_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(path, f"{value!r} is not null")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"{value!r} is not true/false")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(path, f"{value!r} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(path, f"{value!r} is not an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, f"{value!r} is not a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, f"{value!r} is not a string")
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"{value!r} is not {_type_name(tp)}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"{value!r} is not {_type_name(tp)}")
        _, item = typing.get_args(tp)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(path, f"key {k!r} is not a string")
            out[k] = _coerce(v, item, f"{path}.{k}" if path else k)
        return out
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def from_mapping(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from `data` strictly (unknown keys, wrong types, missing required keys), then validate."""
    return validate(_build(cls, data, path), path)


def validate(obj: Any, path: str = "") -> Any:
    """Every `check(path)` of a config tree, innermost first: a dataclass's fields (mappings and lists item by item)
    before the dataclass itself, so a check may rely on its parts being valid. Returns `obj`."""
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if f.init:
                validate(getattr(obj, f.name), f"{path}.{f.name}" if path else f.name)
        if hasattr(obj, "check"):
            obj.check(path)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            validate(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            validate(v, f"{path}[{i}]")
    return obj


def _build(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise ConfigError(key, f"unknown key (allowed: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(sub, "missing required key")
    return cls(**kwargs)


def to_mapping(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    return obj
