"""Dockerfile -> stages, base images, and the context paths each COPY/ADD/RUN --mount reads.

Parsing is BuildKit's grammar through e2b-dockerfile-utils (a thin adapter: only
`_parse` touches it); the ARG/ENV scoping and the stage graph are ours.

BuildKit's automatic platform ARGs (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the
BUILD* four) are in the global scope for one target platform (default: the runner's), so
`FROM binaries-$TARGETOS` names a stage and `ARG TARGETPLATFORM` + `COPY ./dist/$TARGETPLATFORM/x /`
reads that platform's files. An artifact with several platforms is analyzed once per platform.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from e2b_dockerfile_utils import (
    DockerfileAst,
    DockerfileInstruction,
    DockerfileSyntaxError,
    ShellLex,
    parse_dockerfile_ast,
)

from . import platforms
from .errors import DockerfileError
from .platforms import Platform, PlatformError

# A `requires` alias stands for IMAGE:HASH@DIGEST, which is known only once the
# required artifact exists; analysis sees this placeholder in its place.
PENDING_PREFIX = "regless.invalid/required/"
_URL_RE = r"^(?:https?://|git@|git://|ssh://)"  # compiled by `re` (its cache) when a Dockerfile is analysed


@dataclass(frozen=True)
class Source:
    """A path or glob, relative to the context (POSIX, cleaned), that the build reads."""

    pattern: str
    line: int
    instruction: str  # COPY, ADD or RUN
    excludes: tuple[str, ...] = ()  # COPY/ADD --exclude patterns, relative to what the source names


@dataclass(frozen=True)
class BaseImage:
    """A FROM or COPY --from that names an image, not a stage."""

    text: str  # after ARG expansion
    line: int
    platform: str | None = None  # FROM --platform=… after expansion; None: the target platform


@dataclass(frozen=True)
class Analysis:
    """What a Dockerfile's target stage takes from outside: the context's files it copies, the images it
    starts from, the remote sources it names. The hash is made of these, so nothing else of the file needs
    reading again."""

    sources: tuple[Source, ...]
    bases: tuple[BaseImage, ...]
    remote: tuple[str, ...]  # ADD URLs and git references: no context, but their text is an input
    stages: tuple[str, ...]  # names (or indexes) of the stages the target needs, in order
    platform_args: bool = False  # the Dockerfile names an automatic platform ARG: its image depends on them
    # remote sources without ADD --checksum=: only their text is hashed, so a change at the remote goes unseen
    unchecked: tuple[str, ...] = ()


@dataclass
class _Stage:
    index: int
    name: str | None
    base: str
    base_line: int
    parent: int | None  # index of the stage it is FROM, if any
    platform: str | None  # FROM --platform=…, expanded
    env: dict[str, str]
    args: dict[str, str]
    deps: set[int]
    sources: list[Source]
    bases: list[BaseImage]
    remote: list[str]
    unchecked: list[str] = field(default_factory=list)


def pending(alias: str) -> str:
    """The placeholder image a `requires` alias stands for while analysing: the required artifact's
    IMAGE:HASH@DIGEST is not known yet, and FROM must still parse (PENDING_PREFIX says why)."""
    return f"{PENDING_PREFIX}{alias.lower()}:pending"


def _parse(text: str, path: str) -> DockerfileAst:
    try:
        return parse_dockerfile_ast(text)
    except DockerfileSyntaxError as exc:
        raise DockerfileError(f"syntax error: {exc}", path=path, line=getattr(exc, "line", None)) from exc


def _flag(flags: list[str], name: str) -> str | None:
    prefix = f"--{name}="
    for f in flags:
        if f.startswith(prefix):
            return f[len(prefix):]
        if f == f"--{name}":
            return ""
    return None


def _clean(pattern: str, path: str, line: int) -> str:
    """Context-relative POSIX path; a leading / means the context root, as in Docker."""
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("/"):
        cleaned = posixpath.normpath(cleaned.lstrip("/")) if cleaned != "/" else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise DockerfileError(f"source {pattern!r} is outside the build context", path=path, line=line,
                              hint="a build can only read files inside its context; move the file or widen context")
    return cleaned


def analyze(path: Path, *, build_args: dict[str, str], target: str | None,
            platform: Platform | None = None) -> Analysis:
    """What the build of `target` (default: the last stage) for `platform` (default: the runner's) reads
    from the context and which images it starts from."""
    return analyze_text(read(path), str(path), build_args=build_args, target=target, platform=platform)


def read(path: Path) -> str:
    """The Dockerfile's text, or a DockerfileError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DockerfileError(f"cannot read the Dockerfile: {exc}", path=str(path)) from exc


def analyze_text(text: str, where: str, *, build_args: dict[str, str], target: str | None,
                 platform: Platform | None = None) -> Analysis:
    """analyze() of a Dockerfile's text (`where` names it in errors): a pure function of its arguments and
    the runner's platform, which parsememo.py keeps across runs."""
    ast = _parse(text, where)
    escape = ast.escape_token
    # BuildKit's automatic ARGs start the global scope; a --build-arg of the same name wins
    auto = platforms.automatic_args(platform or platforms.host(), platforms.host())
    global_args: dict[str, str] = {k: build_args.get(k, v) for k, v in auto.items()}
    stages: list[_Stage] = []
    by_name: dict[str, int] = {}

    def lex(env: dict[str, str]) -> ShellLex:
        return ShellLex(escape, env=env, skip_unset_env=False)

    for ins in ast.instructions:
        name = ins.name.upper()
        line = ins.start_line
        if name == "ARG" and not stages:
            for decl in ins.args:
                key, eq, default = decl.partition("=")
                value = build_args.get(key, lex(global_args).process_word(default) if eq else None)
                if value is not None:
                    global_args[key] = value
            continue
        if name == "FROM":
            words = ins.args
            if not words:
                raise DockerfileError("FROM needs an image", path=where, line=line)
            base = lex(global_args).process_word(words[0])
            stage_name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            parent = by_name.get(base.lower())  # after expansion: `FROM binaries-$TARGETOS` is a stage
            env = dict(stages[parent].env) if parent is not None else {}
            from_platform = _from_platform(ins, lex(global_args), where)
            st = _Stage(len(stages), stage_name, base, line, parent, from_platform, env, {}, set(), [], [], [])
            if parent is not None:
                st.deps.add(parent)
            elif base != "scratch":
                st.bases.append(BaseImage(base, line, from_platform))
            stages.append(st)
            if stage_name:
                by_name[stage_name] = st.index
            by_name.setdefault(str(st.index), st.index)
            continue
        if not stages:
            raise DockerfileError(f"{name} before the first FROM", path=where, line=line,
                                  hint="only ARG may come before FROM")
        st = stages[-1]
        scope = {**st.args, **st.env}
        if name == "ARG":
            for decl in ins.args:
                key, eq, default = decl.partition("=")
                if key in build_args:
                    st.args[key] = build_args[key]
                elif eq:
                    st.args[key] = lex(scope).process_word(default)
                elif key in global_args:
                    st.args[key] = global_args[key]
        elif name == "ENV":
            # e2b gives flat (key, value, '=') triples; the values see the env before this instruction
            vals = ins.args
            for i in range(0, len(vals) - 2, 3):
                st.env[vals[i]] = lex(scope).process_word(vals[i + 1])
        elif name in ("COPY", "ADD"):
            _copy(ins, name, st, by_name, lex(scope), where)
        elif name == "RUN":
            _run_mounts(ins, st, by_name, lex(scope), where)

    if not stages:
        raise DockerfileError("no FROM instruction", path=where, hint="a Dockerfile starts with FROM (after ARGs)")
    if target is None:
        chosen = len(stages) - 1
    elif target.lower() in by_name and not target.isdigit():
        chosen = by_name[target.lower()]
    else:
        raise DockerfileError(f"target stage {target!r} not found", path=where,
                              hint=f"stages: {', '.join(s.name for s in stages if s.name) or '(none named)'}")
    needed: list[int] = []

    def need(i: int) -> None:
        if i in needed:
            return
        for d in sorted(stages[i].deps):
            need(d)
        needed.append(i)

    need(chosen)
    picked = [stages[i] for i in needed]
    return Analysis(
        sources=tuple(s for st in picked for s in st.sources),
        bases=tuple(b for st in picked for b in st.bases),
        remote=tuple(r for st in picked for r in st.remote),
        stages=tuple(st.name or str(st.index) for st in picked),
        platform_args=platforms.MENTIONS.search(text) is not None,
        unchecked=tuple(r for st in picked for r in st.unchecked),
    )


def _from_platform(ins: DockerfileInstruction, lx: ShellLex, where: str) -> str | None:
    """FROM --platform=…, expanded with the global ARGs and normalized (`$BUILDPLATFORM` is common)."""
    raw = _flag(ins.flags, "platform")
    if raw is None:
        return None
    value = lx.process_word(raw)
    try:
        return str(platforms.parse(value))
    except PlatformError as exc:
        raise DockerfileError(f"FROM --platform={raw}: {exc.message}", path=where, line=ins.start_line,
                              hint=exc.hint) from exc


def _copy(ins: DockerfileInstruction, name: str, st: _Stage, by_name: dict[str, int], lx: ShellLex, where: str) -> None:
    line = ins.start_line
    frm = _flag(ins.flags, "from")
    args = [a for a in ins.args]
    if len(args) < 2:
        raise DockerfileError(f"{name} needs a source and a destination", path=where, line=line)
    srcs = args[:-1]
    if frm is not None:
        frm_val = lx.process_word(frm)
        idx = by_name.get(frm_val.lower())
        if idx is not None and idx < st.index:
            st.deps.add(idx)
        else:
            st.bases.append(BaseImage(frm_val, line, st.platform))
        return
    excludes = tuple(lx.process_word(f.split("=", 1)[1]) for f in ins.flags if f.startswith("--exclude="))
    heredocs = {h.name for h in ins.heredocs}
    for raw in srcs:
        if raw.startswith("<<") and raw.lstrip("<-").strip("'\"") in heredocs:
            continue  # heredoc body: in the Dockerfile bytes already
        src = raw if ins.json else lx.process_word(raw)
        if name == "ADD" and re.match(_URL_RE, src):
            st.remote.append(src)
            if not any(f.startswith("--checksum=") for f in ins.flags):
                st.unchecked.append(src)
            continue
        st.sources.append(Source(_clean(src, where, line), line, name, excludes))


def _run_mounts(ins: DockerfileInstruction, st: _Stage, by_name: dict[str, int], lx: ShellLex, where: str) -> None:
    for flag in ins.flags:
        if not flag.startswith("--mount="):
            continue
        opts: dict[str, str] = {}
        for part in flag[len("--mount="):].split(","):
            k, _, v = part.partition("=")
            opts[k.strip().lower()] = lx.process_word(v.strip())
        mtype = opts.get("type", "bind")
        frm = opts.get("from")
        if frm is not None:
            idx = by_name.get(frm.lower())
            if idx is not None and idx < st.index:
                st.deps.add(idx)
            elif mtype == "bind":
                st.bases.append(BaseImage(frm, ins.start_line, st.platform))
            continue
        if mtype == "bind":
            src = opts.get("source", opts.get("src", "."))
            st.sources.append(Source(_clean(src, where, ins.start_line), ins.start_line, "RUN"))


def declare_automatic_args(text: str) -> str | None:
    """The Dockerfile with `ARG NAME` lines before its first FROM for each automatic platform ARG that a
    FROM line uses without declaring it; None when there is none (or the text does not parse).

    BuildKit defines them in the global scope, so `FROM bin-$TARGETARCH` works as it is; buildah 1.28
    expands in FROM lines only the ARGs declared there (it then gives them its platform values), and
    would stop at `FROM bin-`. A declaration without a value changes nothing for BuildKit."""
    try:
        ast = parse_dockerfile_ast(text)
    except DockerfileSyntaxError:
        return None
    declared: set[str] = set()
    used: list[str] = []
    first_from: int | None = None
    for ins in ast.instructions:
        name = ins.name.upper()
        if name == "ARG" and first_from is None:
            declared.update(d.partition("=")[0] for d in ins.args)
        elif name == "FROM":
            first_from = ins.start_line if first_from is None else first_from
            for m in platforms.MENTIONS.findall(" ".join([*ins.flags, *ins.args])):
                if m not in declared and m not in used:
                    used.append(m)
    if not used or first_from is None:
        return None
    lines = text.splitlines(keepends=True)
    at = first_from - 1
    return "".join([*lines[:at], *(f"ARG {n}\n" for n in used), *lines[at:]])
