"""`.dockerignore` with Docker's semantics (moby's patternmatcher, through e2b-dockerfile-utils), and the
walk's verdict on each entry, which both engines ask.

BuildKit reads `<Dockerfile name>.dockerignore` beside the Dockerfile in preference
to `<context>/.dockerignore`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from e2b_dockerfile_utils import PatternMatcher

from ..errors import DockerfileError
from .globs import ignore_matcher


@dataclass(frozen=True)
class IgnoreRules:
    """The patterns of the ignore file that applies to an artifact, and which file that was."""

    patterns: tuple[str, ...]
    source: str | None  # the file they came from

    def matcher(self) -> PatternMatcher | None:
        """The library's matcher for the patterns (None: nothing is ignored)."""
        return PatternMatcher(list(self.patterns)) if self.patterns else None


def read_patterns(text: str) -> list[str]:
    """moby's ignorefile.ReadAll: BOM stripped, `#` comments in column 1, blanks skipped."""
    out: list[str] = []
    for i, raw in enumerate(text.splitlines()):
        if i == 0 and raw.startswith("\ufeff"):
            raw = raw[1:]
        if raw.startswith("#"):
            continue
        line = raw.strip()
        if line:
            out.append(line)
    return out


def load(context: Path, dockerfile: Path) -> IgnoreRules:
    """The rules for a Dockerfile in a context: its own ignore file, else the context's, else none.
    A file that cannot be read or holds a bad pattern is a DockerfileError naming it."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            try:
                patterns = read_patterns(candidate.read_text(encoding="utf-8"))
            except UnicodeDecodeError as exc:
                raise DockerfileError(f"not UTF-8 text (byte {exc.start})", path=str(candidate),
                                      hint="save the file as UTF-8") from exc
            except OSError as exc:
                raise DockerfileError(f"cannot be read: {exc.strerror}", path=str(candidate)) from exc
            try:
                PatternMatcher(patterns)
            except Exception as exc:  # the port raises ValueError-like errors for bad patterns
                raise DockerfileError(f"bad pattern: {exc}", path=str(candidate),
                                      hint="patterns follow Go's filepath.Match, plus **") from exc
            return IgnoreRules(tuple(patterns), str(candidate))
    return IgnoreRules((), None)


class Verdict(IntEnum):
    """The walk's answer for one entry. An int: the C engine's walk reads it as one."""

    KEEP = 0
    LEAVE_OUT = 1
    LOOK_BELOW = 2  # leave it out, but walk below it: an exception may re-include something there


_KEEP, _LEAVE_OUT, _LOOK_BELOW = Verdict.KEEP, Verdict.LEAVE_OUT, Verdict.LOOK_BELOW  # for the per-entry loop
Skip = Callable[[str, bool], Verdict]  # (context-relative path, is a folder) -> verdict


def skipper(rules: IgnoreRules) -> Skip | None:
    """The walk's question to .dockerignore about each entry (None: no rules, keep everything)."""
    matcher = rules.matcher()
    return None if matcher is None else Skipper(matcher)


class Skipper:
    """The walk's verdicts, asked of folders before what they hold.

    PatternMatcher.matches(path) tests every pattern against the path and each of its parent folders.
    Like BuildKit's walk (patternmatcher's MatchesUsingParentResults), this keeps each folder's
    per-pattern results, so an entry costs one test per pattern: the same loop as matches(), one depth.
    """

    def __init__(self, matcher: PatternMatcher) -> None:
        self.matcher = matcher
        self.patterns = [(p.startswith("!"), ignore_matcher(p[1:] if p.startswith("!") else p))
                         for p in matcher.patterns]
        self.none = [False] * len(self.patterns)  # no pattern matched: most folders
        self.rules = [match for exclusion, match in self.patterns if not exclusion]
        self.folders: dict[str, list[bool]] = {"": self.none}
        self.tails = tails([p for p in matcher.patterns if not p.startswith("!")])

    def plain(self, folder: str) -> bool:
        """Whether no pattern matched `folder` nor a folder above it (asked before): then a file in it is
        left out only where a rule matches its own path, which needs its path to end with one of `tails`.
        The C walk asks this of each folder it keeps, and asks nothing about its other files (all kept)."""
        return self.folders.get(folder) is self.none

    def __call__(self, path: str, is_dir: bool) -> Verdict:
        """The verdict on `path`; its parent folder was asked before."""
        parent = self.folders.get(path.rpartition("/")[0])
        if parent is self.none:  # the common case, quickly: only a rule can match, then no exception can
            for match in self.rules:
                if match(path):
                    break
            else:
                if is_dir:
                    self.folders[path] = self.none
                return _KEEP
        if parent is None:  # a folder not asked about first: the library's whole test
            matched = self.matcher.matches(path)
        else:
            current: list[bool] = []
            matched = False
            for (exclusion, match), was in zip(self.patterns, parent, strict=True):
                hit = was  # a pattern that matched a parent folder matches what it holds
                if not hit:
                    if exclusion != matched:  # an exception cannot change an unmatched path, nor a rule a matched one
                        current.append(False)
                        continue
                    hit = match(path)
                current.append(hit)
                if hit:
                    matched = not exclusion
            if is_dir:
                self.folders[path] = current
        if not matched:
            return _KEEP
        return _LOOK_BELOW if is_dir and self.matcher.may_match_under(path) else _LEAVE_OUT


_WILD = frozenset("*?[]\\")


def tails(rules: list[str]) -> tuple[bytes, ...] | None:
    """What the path of a file that a rule matches must end with, one per rule (as bytes on disk): the
    literal characters after a rule's last wildcard, bracket or escape, less a leading `/` (`**/x` also
    matches `x`): `**/*.tmp` -> `.tmp`. globs.ignore_matcher anchors every pattern at the end of the path,
    so a path that ends with none of them matches no rule. None where some rule ends in a wildcard (then
    no such test exists and every entry is asked)."""
    out: list[bytes] = []
    for rule in rules:
        at = len(rule)
        while at > 0 and rule[at - 1] not in _WILD:
            at -= 1
        tail = rule[at:].lstrip("/")
        if not tail:
            return None
        out.append(os.fsencode(tail))
    return tuple(dict.fromkeys(out))
