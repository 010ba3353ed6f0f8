"""Notebook parameters: the single ``parameters`` cell, typed values from the command line
or a YAML file, and their validation against the defaults.

One typing rule everywhere: a value must fit the type of the parameter's default. Values
are read with YAML 1.2 core-schema semantics, from ``-p name=value`` and from
``--params FILE.yaml`` alike, so ``1e-3`` is a float, ``010`` is ten, ``yes`` is a string,
``null``/``None`` is None and ``[2, 3]`` is a list. String parameters take ``-p`` text as is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Mapping

import nbformat
import yaml

__all__ = [
    "PipelineError",
    "ParameterError",
    "notebook_parameters",
    "yaml12_load",
    "parse_value",
    "conform",
    "load_parameter_file",
    "describe",
]


class PipelineError(Exception):
    """A run could not be done; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ParameterError(PipelineError):
    """Unknown name, wrong type, or a notebook without exactly one ``parameters`` cell."""

    exit_code = 2


def notebook_parameters(path: Path) -> dict:
    """Names and defaults of the single ``parameters`` cell of a notebook, in order.

    Raises :class:`ParameterError` if there is not exactly one such cell or if it holds
    anything but assignments of literals to names.
    """
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{Path(path).name}: {len(cells)} cells are tagged 'parameters'; exactly one is needed")
    params = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        else:
            target = value = None
        try:
            if not isinstance(target, ast.Name) or value is None:
                raise ValueError
            params[target.id] = ast.literal_eval(value)
        except ValueError:
            raise ParameterError(
                f"{Path(path).name}: the parameters cell may only assign literals to names; "
                f"line {node.lineno} does not"
            ) from None
    return params


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema for null, bool, int and float."""


_CORE = {"tag:yaml.org,2002:" + t for t in ("bool", "int", "float", "null")}
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _CORE]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _regex, _first in (
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+0123456789.")),
):
    _Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:" + _tag, re.compile(_regex), _first)


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)  # YAML 1.2: a leading zero is still decimal


def _construct_float(loader, node):
    text = loader.construct_scalar(node).lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def yaml12_load(text: str) -> Any:
    """Parse YAML text with YAML 1.2 core-schema scalars (``1e-3`` → float, ``yes`` → str)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)


def conform(value, default):
    """``value`` converted to the type of ``default``; raises TypeError if it cannot be.

    ``None`` defaults accept anything; ints are accepted for float defaults; list items
    are conformed to the type of the default's first item.
    """
    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            items = [conform(v, default[0]) for v in value] if default else list(value)
            return type(default)(items)
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    raise TypeError


def parse_value(raw: str, default):
    """A command-line string as a value of ``default``'s type.

    String defaults take the text as is; everything else is read as YAML 1.2 (see the
    module docstring), with Python's ``None`` also meaning null. Raises TypeError when the
    result does not fit the default's type.
    """
    if isinstance(default, str):
        return raw
    text = raw.strip()
    try:
        value = None if text == "None" else yaml12_load(text)
    except yaml.YAMLError:
        raise TypeError from None
    return conform(value, default)


def load_parameter_file(path: Path) -> dict:
    """A YAML mapping of parameter names to values (YAML 1.2 semantics), as a dict."""
    try:
        data = yaml12_load(Path(path).read_text())
    except OSError as err:
        raise ParameterError(f"cannot read the parameter file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ParameterError(f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ParameterError(f"{path} must hold a mapping of parameter names to values")
    return data


def describe(params: Mapping) -> str:
    """``name (type, default value), …`` for error messages."""
    return ", ".join(f"{k} ({type(v).__name__}, default {v!r})" for k, v in params.items())
