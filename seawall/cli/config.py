"""``seawall config``: the configuration's defaults, from the code that applies them.

One source of truth: the frozen dataclasses of :mod:`seawall.config` (and the
sections they nest, such as :class:`seawall.dns.rrl.RrlSettings`). Every key,
its default and its type come from the dataclass fields; its meaning from the
comment written beside the field in the source: an attribute docstring (a
string on the line after the field), ``#:`` lines above it, or a trailing
``# comment``; failing those, the ``# comment`` of that key in the example of
``seawall.config``'s module docstring; for a section, its class's summary.

* ``seawall config --print-defaults`` prints a complete configuration file,
  every key at its default, each explained by a comment: a file to start from.
* ``seawall config --reference`` prints the Markdown reference committed as
  ``docs/configuration.md`` (a test fails when the committed file is stale:
  regenerate it with ``seawall config --reference > docs/configuration.md``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import re
import sys
import textwrap
import tokenize
import types
import typing
from typing import Any

import yaml

from .. import config as config_module
from ..config import Config, Duration, Horizon

SKIPPED = {"base_dir"}
"""Fields that are not configuration keys (``base_dir`` is where the file was found)."""


def register(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("config", help="print the configuration's defaults",
                              description="Print every configuration key with its default "
                                          "and meaning, taken from the code.")
    what = cmd.add_mutually_exclusive_group(required=True)
    what.add_argument("--print-defaults", action="store_true",
                      help="a complete seawall.yaml, every key at its default, commented")
    what.add_argument("--reference", action="store_true",
                      help="the Markdown reference (docs/configuration.md)")
    cmd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(defaults_yaml() if args.print_defaults else reference_markdown())
    return 0


# --------------------------------------------------------------- the model

@dataclasses.dataclass(frozen=True)
class Key:
    """One configuration key: its place, type, default and meaning."""

    path: str                   # dotted, ``[]`` for the items of a list
    name: str
    hint: Any
    default: Any
    doc: str
    section: type | None        # the dataclass of a mapping (or of a list's items)
    depth: int


def keys(cls: type = Config, prefix: str = "", depth: int = 0) -> list[Key]:
    """Every key of ``cls`` and of the sections below it, in source order."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out: list[Key] = []
    for field in dataclasses.fields(cls):
        if field.name in SKIPPED or field.name.startswith("_"):
            continue
        path = f"{prefix}{field.name}"
        hint = hints[field.name]
        default = _default(field)
        section = _section(hint)
        doc = docs.get(field.name) or _example_docs().get(path, "")
        if not doc and section is not None:  # a section: its class's one-line summary
            doc = (inspect.getdoc(section) or "").split("\n\n")[0].replace("\n", " ")
        out.append(Key(path, field.name, hint, default, doc, section, depth))
        if section is not None:
            is_list = typing.get_origin(_strip_none(hint)) is tuple
            out += keys(section, f"{path}[]." if is_list else f"{path}.", depth + 1)
    return out


def field_docs(cls: type) -> dict[str, str]:
    """What the source says beside each field: attribute docstring, ``#:`` or ``# ...``."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string
    tree = ast.parse(source)
    classdef = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    docs: dict[str, str] = {}
    body = classdef.body
    for i, stmt in enumerate(body):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        parts: list[str] = []
        after = body[i + 1] if i + 1 < len(body) else None
        if (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            parts.append(inspect.cleandoc(after.value.value))
        above: list[str] = []
        line = stmt.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#:"):
            above.insert(0, lines[line - 1].strip()[2:].strip())
            line -= 1
        if above and not parts:
            parts.append(" ".join(above))
        trailing = [comments[n] for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
                    if n in comments and not lines[n - 1].lstrip().startswith("#")]
        if trailing and not parts:
            parts.append(" ".join(c.lstrip("#").strip() for c in trailing))
        if parts:
            docs[stmt.target.id] = " ".join(parts)
    return docs


_EXAMPLE_LINE = re.compile(r"^(?P<indent>\s*)(?P<item>-\s+)?(?P<key>[A-Za-z_]\w*):"
                           r"(?P<rest>.*)$")


def _example_docs() -> dict[str, str]:
    """``key: value  # meaning`` lines of the example in seawall.config's docstring.

    Only mapping keys: a comment on a list item's line describes that example
    item (``- type: files  # a directory of zone files``), not the key.
    """
    text = (config_module.__doc__ or "").partition("Example::")[2]
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, path component)
    for raw in text.splitlines():
        match = _EXAMPLE_LINE.match(raw)
        if not match:
            continue
        own = len(match["indent"])
        indent = own + (len(match["item"]) if match["item"] else 0)
        while stack and stack[-1][0] >= (own if match["item"] else indent):
            stack.pop()
        if match["item"]:
            stack.append((own, "[]"))
        path = ".".join([c for _, c in stack] + [match["key"]]).replace(".[]", "[]")
        stack.append((indent, match["key"]))
        comment = _comment(match["rest"])
        if comment and "[]" not in path and path not in docs:
            docs[path] = comment
    return docs


def _comment(rest: str) -> str:
    """The ``# comment`` of a YAML value, ignoring a ``#`` inside quotes."""
    quote = ""
    for i, char in enumerate(rest):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or rest[i - 1].isspace()):
            return rest[i + 1:].strip()
    return ""


# ------------------------------------------------------------------ YAML

def defaults_yaml() -> str:
    """A complete configuration file: every key at its default, each commented."""
    out = ["# Seawall configuration: every key at its default.",
           "# Generated from the code (seawall config --print-defaults); an empty file",
           "# or no file at all means exactly this. Relative paths are resolved from",
           "# the folder of this file.", ""]
    _yaml_section(Config, "", 0, out, commented=False)
    return "\n".join(out) + "\n"


def _yaml_section(cls: type, prefix: str, indent: int, out: list[str], *,
                  commented: bool, first_item: bool = False) -> None:
    pad = " " * indent

    def emit(line: str) -> None:
        out.append(("#" + line) if commented else line)

    for n, key in enumerate(k for k in keys(cls, prefix) if k.depth == 0):
        lead = pad[:-2] + "- " if first_item and n == 0 else pad
        for line in textwrap.wrap(key.doc, 86 - indent) if key.doc else []:
            emit(f"{pad}# {line}")
        if key.section is not None and typing.get_origin(_strip_none(key.hint)) is tuple:
            emit(f"{lead}{key.name}: {_yaml_value(key.default)}")
            emit(f"{pad}# each item, with its defaults:")
            _yaml_section(key.section, f"{key.path}[].", indent + 4, out, commented=True,
                          first_item=True)
        elif key.section is not None and key.default is not None:
            emit(f"{lead}{key.name}:")
            _yaml_section(key.section, f"{key.path}.", indent + 2, out, commented=commented)
        else:
            emit(f"{lead}{key.name}: {_yaml_value(key.default)}")


def _yaml_value(value: Any) -> str:
    if isinstance(value, Horizon) and value.is_expire:
        return "expire"
    if isinstance(value, Duration):
        return format_duration(value)
    if isinstance(value, tuple):
        value = [format_duration(v) if isinstance(v, Duration) else v for v in value]
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    except yaml.representer.RepresenterError:  # a type YAML has no tag for: its text
        text = yaml.safe_dump(str(value), default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def format_duration(seconds: float) -> str:
    """``Duration`` as written in the file: ``500ms``, ``1s``, ``10m``, ``2h``."""
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"


# -------------------------------------------------------------- Markdown

def reference_markdown() -> str:
    """docs/configuration.md: every key with its type, default and meaning."""
    out = ["# Configuration reference", "",
           "<!-- Generated by `seawall config --reference > docs/configuration.md` from",
           "     seawall/config.py; do not edit: change the code's comments instead. -->", "",
           "Seawall reads one YAML file (`seawall serve --config seawall.yaml`). Every key "
           "has a default, so an empty file (or none) is a working server; unknown keys and "
           "values of the wrong type are errors naming their line. Durations are written "
           "`500ms`, `1s`, `10m`, `2h` or a number of seconds; relative paths are resolved "
           "from the folder of the configuration file.", ""]
    sections: dict[str, list[Key]] = {"": []}
    titles: dict[str, tuple[type, Key | None]] = {"": (Config, None)}
    for key in keys():
        parent = key.path.rsplit(".", 1)[0] if "." in key.path else ""
        sections.setdefault(parent, []).append(key)
        if key.section is not None:
            path = key.path + ("[]" if typing.get_origin(_strip_none(key.hint)) is tuple else "")
            titles[path] = (key.section, key)
            sections.setdefault(path, [])
    for path, members in sections.items():
        cls, owner = titles[path]
        out.append(f"## `{path}`" if path else "## Top level")
        out.append("")
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        if owner is not None and owner.doc:
            out += [owner.doc, ""]
        if summary and not (owner is not None and owner.doc == summary):
            out += [summary, ""]
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for key in members:
            default = ("(see below)" if key.section is not None and key.default is not None
                       and not isinstance(key.default, tuple) else _yaml_value(key.default))
            meaning = key.doc.replace("|", "\\|")
            out.append(f"| `{key.name}` | {type_name(key.hint)} | `{default}` | {meaning} |")
        out.append("")
    out += ["## Every default, as a file", "", "`seawall config --print-defaults` prints:", "",
            "```yaml", defaults_yaml().rstrip("\n"), "```", ""]
    return "\n".join(out)


def type_name(hint: Any) -> str:
    """A reader's name for a field's type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [type_name(a) for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(parts) + " or null"
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return "list of mappings" if dataclasses.is_dataclass(item) else \
            f"list of {type_name(item)}s"
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return {Duration: "duration", Horizon: "duration or expire", str: "string", int: "integer", bool: "boolean",
            float: "number"}.get(hint, getattr(hint, "__name__", str(hint)))


# --------------------------------------------------------------- helpers

def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _strip_none(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return hint


def _section(hint: Any) -> type | None:
    """The dataclass of a mapping key, or of the items of a list key."""
    hint = _strip_none(hint)
    if dataclasses.is_dataclass(hint):
        return hint  # type: ignore[return-value]
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if args and dataclasses.is_dataclass(args[0]):
            return args[0]  # type: ignore[return-value]
    return None
