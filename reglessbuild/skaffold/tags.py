"""build.tagPolicy: the tag Skaffold would give an image (pkg/skaffold/tag/), which regless adds as a retag.

regless always pushes IMAGE:<workspace hash>; the policy's tag is copied onto the same
manifest in the registry (no build), and `--file-output` reports it, so that
`skaffold deploy --build-artifacts` deploys what Skaffold would have.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import proc, witness
from ..refs import TAG_RE
from . import templates
from .data import Places

INPUT_DIGEST = "<inputDigest>"  # stands for the tag until hashing lists the files
DEFAULT_DATE_FORMAT = "2006-01-02_15-04-05.999_MST"
_GO_LAYOUT = [("January", "%B"), ("Monday", "%A"), ("2006", "%Y"), ("-0700", "%z"), ("-07:00", "%:z"),
              ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"), ("01", "%m"), ("02", "%d"), ("15", "%H"), ("03", "%I"),
              ("04", "%M"), ("05", "%S"), ("06", "%y"), ("PM", "%p"), ("_2", "%e")]
_VARIANTS = ("", "tags", "commitsha", "abbrevcommitsha", "treesha", "abbrevtreesha", "branches")


class TagPolicyError(Exception):
    """A tagger could not make its tag; the caller says where."""


def go_time_format(layout: str, when: dt.datetime) -> str:
    """Format `when` with a Go time layout (the reference time Mon Jan 2 15:04:05 MST 2006)."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        frac = re.match(r"[.,](0+|9+)", layout[i:])
        if frac:
            digits = f"{when.microsecond:06d}{'0' * 3}"[: len(frac.group(1))]
            out.append("." + digits if frac.group(1)[0] == "0" else ("." + digits.rstrip("0") if digits.rstrip("0")
                                                                     else ""))
            i += len(frac.group(0))
            continue
        for go, py in _GO_LAYOUT:
            if layout.startswith(go, i):
                zone = when.strftime("%z")
                out.append(when.strftime(py) if py != "%:z" else zone[:3] + ":" + zone[3:])
                i += len(go)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)


def _git(workspace: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(workspace), *args], timeout=60, install_hint="gitCommit tags need git")
    if not done.ok:
        raise TagPolicyError(f"git {' '.join(args)} in {workspace} failed: {done.stderr_text.strip()[-200:]}")
    return done.stdout.decode("utf-8", "replace").strip()


def _sanitize(tag: str) -> str:
    """Skaffold's sanitizeTag: characters a tag cannot hold become `_`, as do leading `-` and `.`."""
    tag = re.sub(r"[^a-zA-Z0-9-._]", "_", tag)
    lead = len(tag) - len(tag.lstrip("-."))
    return ("_" * lead + tag[lead:])[:128]


def git_commit(spec: Mapping[str, Any], workspace: Path) -> str:
    """tagPolicy gitCommit's tag, of the variant `spec` names, as Skaffold makes it from `git` in `workspace`."""
    variant = str(spec.get("variant") or "").lower()
    if variant not in _VARIANTS:
        raise TagPolicyError(f"{spec.get('variant')!r} is not a gitCommit variant (Tags, CommitSha, "
                             "AbbrevCommitSha, TreeSha, AbbrevTreeSha, Branches)")
    if variant in ("", "tags"):
        ref = _git(workspace, "describe", "--tags", "--always")
    elif variant == "commitsha":
        ref = _git(workspace, "rev-list", "-1", "HEAD")
    elif variant == "abbrevcommitsha":
        ref = _git(workspace, "rev-list", "-1", "HEAD", "--abbrev-commit")
    elif variant == "branches":
        ref = _git(workspace, "branch", "--show-current") or _git(workspace, "rev-list", "-1", "HEAD",
                                                                  "--abbrev-commit")
    else:
        top = Path(_git(workspace, "rev-parse", "--show-toplevel"))
        rel = workspace.resolve().relative_to(top.resolve()).as_posix()
        path = "" if rel == "." else rel
        ref = _git(workspace, "rev-parse", *(["--short"] if variant == "abbrevtreesha" else []), f"HEAD:{path}/"
                   if path else "HEAD:")
    ref = _sanitize(ref)
    prefix = str(spec.get("prefix") or "")
    if not spec.get("ignoreChanges") and _git(workspace, "status", ".", "--porcelain"):
        return f"{prefix}{ref}-dirty"
    return prefix + ref


def date_time(spec: Mapping[str, Any], now: dt.datetime | None = None) -> str:
    """tagPolicy dateTime's tag: `now` in the spec's format (Go's layout) and timezone, as Skaffold's."""
    tz_name = str(spec.get("timezone") or "Local")
    try:
        tz = None if tz_name == "Local" else dt.UTC if tz_name == "UTC" else zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise TagPolicyError(f"unknown timezone {tz_name!r}") from exc
    if now is None and (w := witness.current()) is not None:
        w.spoil("a dateTime tag: its result depends on the clock")
    when = (now or dt.datetime.now(dt.UTC)).astimezone(tz)
    return go_time_format(str(spec.get("format") or DEFAULT_DATE_FORMAT), when)


def one(kind: str, spec: Any, *, image: str, workspace: Path, env: Mapping[str, str],
        components: Mapping[str, Any] | None = None) -> str:
    """The tag of one tagger (`kind` is its key under tagPolicy)."""
    spec = spec or {}
    if kind == "sha256":
        return "latest"  # Skaffold's sha256 tagger tags `latest`; the digest names the image
    if kind == "gitCommit":
        return git_commit(spec, workspace)
    if kind == "dateTime":
        return date_time(spec)
    if kind == "envTemplate":
        return _template(str(spec.get("template") or ""), {**env, "IMAGE_NAME": image})
    if kind == "customTemplate":
        named: dict[str, tuple[str, Any]] = {"GIT": ("gitCommit", {}), "DATE": ("dateTime", {}), "SHA": ("sha256", {})}
        for c in spec.get("components") or []:
            chosen = [k for k in c if k != "name"]
            if len(chosen) != 1:
                raise TagPolicyError(f"component {c.get('name')!r} must set exactly one tagger")
            named[str(c.get("name"))] = (chosen[0], c[chosen[0]])
        used = set(re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", str(spec.get("template") or "")))
        values = {n: one(k, s, image=image, workspace=workspace, env=env) for n, (k, s) in named.items() if n in used}
        return _template(str(spec.get("template") or ""), values)
    if kind == "inputDigest":
        return INPUT_DIGEST  # known once the input files are listed (inputdigest.py)
    raise TagPolicyError(f"unknown tagger {kind!r}")


def _template(template: str, env: Mapping[str, str]) -> str:
    value, unset = templates.expand(template, env)
    if templates.NO_VALUE in value:
        raise TagPolicyError(f"{', '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set, so the tag would "
                             f"be {value!r}")
    return value


def policy_tag(policy: Any, *, image: str, workspace: Path, env: Mapping[str, str], places: Places,
               where: str) -> str | None:
    """The tag build.tagPolicy gives `image` (None without a policy), checked to be a valid tag."""
    if not policy:
        return None
    chosen = [k for k, v in policy.items()]
    if len(chosen) != 1:
        raise places.fail(f"{where} must set exactly one tagger, not {', '.join(chosen)}", policy)
    kind = chosen[0]
    try:
        tag = one(kind, policy[kind], image=image, workspace=workspace, env=env)
    except templates.TemplateError as exc:
        raise places.fail(f"{where}.{kind}: {exc.message}", policy, kind, hint=exc.hint) from exc
    except TagPolicyError as exc:
        raise places.fail(f"{where}.{kind}: {exc}", policy, kind) from exc
    if tag == INPUT_DIGEST and kind == "customTemplate":
        raise places.fail(f"{where}.customTemplate: an inputDigest component is not supported by regless", policy,
                          kind, hint="use inputDigest as the tag policy itself")
    if tag != INPUT_DIGEST and not TAG_RE.match(tag):
        raise places.fail(f"{where}.{kind} gives {tag!r}, which is not a valid image tag", policy, kind,
                          hint="a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`")
    return tag
