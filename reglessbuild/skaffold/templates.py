"""Skaffold's templated fields (build args, envTemplate tags): the part of Go's text/template they use.

Skaffold runs these through Go's text/template with Sprig's functions and its own `cmd`,
over the environment (pkg/skaffold/util/env_template.go). This evaluates the same
actions: `{{.VAR}}`, literals, function calls, parentheses and `|` pipelines, with
`{{-`/`-}}` trimming, and Skaffold's meaning for an unset variable (`{{.NOPE}}` prints
`<no value>`; given to a function it is empty, so `{{default "x" .NOPE}}` is `x`).
Control flow (`if`, `range`, ...) and functions outside FUNCTIONS are refused by name,
never passed on literally. No Python library evaluates Go templates, hence this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import proc
from ..errors import InputError

NO_VALUE = "<no value>"


class TemplateError(InputError):
    """The template cannot be read or evaluated; the caller adds where it was written."""


class _Missing:
    """An unset variable (Go's invalid reflect.Value)."""


MISSING = _Missing()

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+)|(?P<field>\.[A-Za-z_][A-Za-z0-9_]*)|(?P<dot>\.)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<pipe>\|)|(?P<open>\()|(?P<close>\))|(?P<other>\S))""", re.X)
_CONTROL = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0"}


def _empty(v: Any) -> bool:
    return v is None or v is MISSING or v == "" or v == 0 or v is False or v == [] or v == {}


def _text(v: Any) -> str:
    if v is MISSING:
        return NO_VALUE
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _substr(start: int, end: int, v: Any) -> str:
    s = _text(v)
    if start < 0:
        return s[:end]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


def _trunc(n: int, v: Any) -> str:
    s = _text(v)
    if n < 0:
        return s[len(s) + n:] if len(s) + n > 0 else ""
    return s[:n]


def _quote(q: str) -> Callable[..., str]:
    def quote(*args: Any) -> str:
        return " ".join(f"{q}{_text(a)}{q}" if q == "'" else '"' + _text(a).replace("\\", "\\\\").replace('"', '\\"')
                        + '"' for a in args if a is not None and a is not MISSING)
    return quote


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def verb(m: re.Match[str]) -> str:
        if m.group(1) == "%":
            return "%"
        v = next(it, MISSING)
        return f'"{_text(v)}"' if m.group(1) == "q" else _text(v)

    return re.sub(r"%([svdq%])", verb, fmt)


def _cmd(name: str, *args: str) -> str:
    done = proc.run([name, *map(_text, args)], timeout=120, install_hint=f"the template's cmd runs {name}")
    if not done.ok:
        raise TemplateError(f"cmd {name} {' '.join(map(_text, args))} exited {done.returncode}: "
                            f"{done.stderr_text[-300:]}")
    return done.stdout.decode("utf-8", "replace").strip()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "default": lambda d, *given: d if not given or _empty(given[-1]) else given[-1],
    "empty": _empty,
    "coalesce": lambda *vs: next((v for v in vs if not _empty(v)), None),
    "env": lambda name: os.environ.get(_text(name), ""),
    "expandenv": lambda s: os.path.expandvars(_text(s)),
    "lower": lambda s: _text(s).lower(),
    "upper": lambda s: _text(s).upper(),
    "title": lambda s: _text(s).title(),
    "trim": lambda s: _text(s).strip(),
    "trimAll": lambda cut, s: _text(s).strip(_text(cut)),
    "trimPrefix": lambda p, s: _text(s).removeprefix(_text(p)),
    "trimSuffix": lambda p, s: _text(s).removesuffix(_text(p)),
    "replace": lambda old, new, s: _text(s).replace(_text(old), _text(new)),
    "substr": _substr,
    "trunc": _trunc,
    "nospace": lambda s: re.sub(r"\s", "", _text(s)),
    "repeat": lambda n, s: _text(s) * max(0, n),
    "contains": lambda sub, s: _text(sub) in _text(s),
    "hasPrefix": lambda p, s: _text(s).startswith(_text(p)),
    "hasSuffix": lambda p, s: _text(s).endswith(_text(p)),
    "quote": _quote('"'),
    "squote": _quote("'"),
    "cat": lambda *a: " ".join(_text(x) for x in a if x is not None and x is not MISSING),
    "print": lambda *a: "".join(_text(x) for x in a),
    "printf": _printf,
    "not": lambda v: _empty(v),
    "and": lambda *vs: next((v for v in vs if _empty(v)), vs[-1] if vs else None),
    "or": lambda *vs: next((v for v in vs if not _empty(v)), vs[-1] if vs else None),
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "len": lambda v: len(v if isinstance(v, (list, dict)) else _text(v)),
    "cmd": _cmd,
}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(action: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(action):
        kind = m.lastgroup or "other"
        out.append(_Tok(kind, m.group(kind)))
    return out


def _literal(t: _Tok) -> Any:
    if t.kind == "raw":
        return t.text[1:-1]
    if t.kind == "num":
        return int(t.text)
    body = t.text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Eval:
    def __init__(self, toks: list[_Tok], env: Mapping[str, str]) -> None:
        self.toks, self.i, self.env = toks, 0, env

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def pipeline(self) -> Any:
        value: Any = None
        first = True
        while True:
            value = self.command(None if first else value, piped=not first)
            first = False
            t = self.peek()
            if t is None or t.kind == "close":
                return value
            if t.kind != "pipe":
                raise TemplateError(f"unexpected {t.text!r}")
            self.i += 1

    def command(self, piped_value: Any, *, piped: bool) -> Any:
        words: list[tuple[_Tok, Any]] = []
        while (t := self.peek()) is not None and t.kind not in ("pipe", "close"):
            words.append((t, self.operand()))
        if not words:
            raise TemplateError("an empty command in a pipeline")
        head, head_value = words[0]
        if head.kind == "ident":
            args = [v for _, v in words[1:]] + ([piped_value] if piped else [])
            try:
                return FUNCTIONS[head.text](*args)
            except TypeError as exc:
                raise TemplateError(f"wrong arguments for {head.text}: {len(args)} given") from exc
        if len(words) > 1 or piped:
            raise TemplateError(f"{head.text} is not a function and takes no arguments")
        return head_value

    def operand(self) -> Any:
        t = self.toks[self.i]
        self.i += 1
        if t.kind == "field":
            return self.env.get(t.text[1:], MISSING)
        if t.kind in ("str", "raw", "num"):
            return _literal(t)
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return t.text == "true"
            if t.text == "nil":
                return None
            if t.text in _CONTROL:
                raise TemplateError(f"`{t.text}` actions are not supported by regless",
                                    hint="compute the value outside skaffold.yaml and pass it through the environment")
            if t.text not in FUNCTIONS:
                raise TemplateError(f"the template function `{t.text}` is not supported by regless",
                                    hint=f"supported: {', '.join(sorted(FUNCTIONS))}")
            return None  # the function itself: called by command()
        if t.kind == "open":
            value = self.pipeline()
            if self.peek() is None:
                raise TemplateError("a `(` is not closed")
            self.i += 1
            return value
        if t.kind == "dot":
            return MISSING
        raise TemplateError(f"unexpected {t.text!r}")


def expand(template: str, env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """The template's value over `env`, and the variables it read that were unset (they print `<no value>`)."""
    out: list[str] = []
    pos = 0
    unset: list[str] = []
    while (start := template.find("{{", pos)) >= 0:
        end = template.find("}}", start + 2)
        if end < 0:
            raise TemplateError("a `{{` is not closed by `}}`")
        text = template[pos:start]
        action = template[start + 2:end]
        if action.startswith("-") and action[1:2] in (" ", "\t", "\n"):
            text, action = text.rstrip(), action[1:]
        out.append(text)
        pos = end + 2
        if action.endswith("-") and action[-2:-1] in (" ", "\t", "\n"):
            action = action[:-1]
            while pos < len(template) and template[pos].isspace():
                pos += 1
        if action.strip().startswith("/*"):
            continue  # a comment
        toks = _tokens(action)
        unset += [t.text[1:] for t in toks if t.kind == "field" and t.text[1:] not in env]
        ev = _Eval(toks, env)
        value = ev.pipeline()
        if ev.peek() is not None:
            raise TemplateError("a `)` without its `(`")
        out.append(_text(value))
    if "}}" in template[pos:]:
        raise TemplateError("a `}}` without its `{{`")
    out.append(template[pos:])
    return "".join(out), tuple(unset)
