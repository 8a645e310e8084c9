"""Glob patterns as regular expressions, in one place: Go's filepath.Match for COPY/ADD sources, and
moby's patternmatcher for .dockerignore (what e2b-dockerfile-utils ports; its per-pattern matchers are
private, and the walk needs one per pattern, so the translation is made here from its rules)."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum

GLOB_CHARS = re.compile(r"[*?\[\\]")
_LITERAL_REGEX_CHARS = frozenset(".+()|{}$^")


class _Kind(Enum):
    """How a translated ignore pattern is tested: as moby does, by string where no regex is needed."""

    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEX = "regex"


def source_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match as a regex, for a COPY/ADD source: * and ? stop at /, [...] and [^...]
    classes, \\ escapes. Raises ValueError for an unterminated class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                raise ValueError(f"bad pattern {pattern!r}")
            body = pattern[i + 1:j]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def ignore_matcher(pattern: str) -> Callable[[str], bool]:
    """One cleaned .dockerignore pattern (no leading `!`, as PatternMatcher.patterns gives them) as a
    test of one path, at one depth: moby's patternmatcher compile. A pattern without wildcards is
    compared as a string; `**` matches across folders, `**/` also nothing; `\\` escapes. The pattern
    was validated when the ignore file was loaded (PatternMatcher raises on a bad one)."""
    regex, kind = "^", _Kind.EXACT
    i, n = 0, len(pattern)
    while i < n:
        first = i == 0
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # "**/" is "**"
                    i += 1
                if i >= n:
                    regex += ".*"
                    kind = _Kind.PREFIX if kind is _Kind.EXACT else _Kind.REGEX
                else:
                    regex += "(.*/)?"
                    kind = _Kind.REGEX
                if first:
                    kind = _Kind.SUFFIX
            else:
                regex += "[^/]*"
                kind = _Kind.REGEX
        elif ch == "?":
            regex += "[^/]"
            kind = _Kind.REGEX
        elif ch == "[":  # a bracket expression as it is; a leading ^ negates it
            j = i
            if j < n and pattern[j] == "^":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\":
                    j += 1
                j += 1
            regex += pattern[i - 1:j + 1]
            i = j + 1
            kind = _Kind.REGEX
        elif ch == "]":
            regex += ch
            kind = _Kind.REGEX
        elif ch in _LITERAL_REGEX_CHARS:
            regex += "\\" + ch
        elif ch == "\\":
            if i < n:
                regex += re.escape(pattern[i])
                i += 1
                kind = _Kind.REGEX
            else:
                regex += "\\\\"
        else:
            regex += ch
    return _matcher(pattern, regex, kind)


def _matcher(pattern: str, regex: str, kind: _Kind) -> Callable[[str], bool]:
    if kind is _Kind.EXACT:
        return lambda path: path == pattern
    if kind is _Kind.PREFIX:
        prefix = pattern[:-2]
        return lambda path: path.startswith(prefix)
    if kind is _Kind.SUFFIX:
        suffix = pattern[2:]
        return lambda path: path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
    compiled = re.compile(regex + r"\Z")
    return lambda path: compiled.match(path) is not None
