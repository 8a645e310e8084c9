"""`.dockerignore` with Docker's semantics (moby's patternmatcher, through e2b-dockerfile-utils).

BuildKit reads `<Dockerfile name>.dockerignore` beside the Dockerfile in preference
to `<context>/.dockerignore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from e2b_dockerfile_utils import PatternMatcher

from .errors import DockerfileError


@dataclass(frozen=True)
class IgnoreRules:
    patterns: tuple[str, ...]
    source: str | None  # the file they came from

    def matcher(self) -> PatternMatcher | None:
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
