"""skaffold.yaml profiles: which are active, and the config they make (Skaffold's pkg/skaffold/schema/profiles.go).

A profile is active when named with `-p` (`-p -name` turns an auto-activated one off),
or when one of its `activation` entries holds (all of them with
`requiresAllActivations`); an entry holds when each condition it sets holds: `env`
(`KEY=VALUE`, VALUE a regular expression searched in the variable, `!` negating it;
`KEY=` means unset or empty) and `command` (a regular expression on Skaffold's
command: `build` for regless build, plan, hash, deps and explain). A `kubeContext`
condition never holds: regless has no cluster (a warning says so). Profiles apply in the order they are declared.
Applying one overlays its pipeline sections on the config (a mapping merges key by key,
a non-empty list or a set value replaces, and a tagger, builder or artifact type
replaces the whole choice), then applies its `patches` (JSON Patch, `op` defaulting to
`replace`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonpatch
import jsonpointer

from .data import Map, Places, Str

# mappings whose keys are alternatives: a profile that sets one replaces whichever the config had
_ONE_OF = {"tagPolicy", "local", "googleCloudBuild", "cluster", "docker", "kaniko", "jib", "bazel", "buildpacks",
           "custom", "ko"}
_BUILD_TYPES = ("local", "googleCloudBuild", "cluster")
PIPELINE_KEYS = ("build", "test", "manifests", "deploy", "portForward", "resourceSelector", "verify", "customActions")
COMMAND = "build"


def _search(pattern: str, text: str) -> bool:
    """Skaffold's RegexEqual: `!` negates; equal strings match; an invalid expression matches nothing."""
    if pattern.startswith("!"):
        return not _search(pattern[1:], text)
    if pattern == text:
        return True
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def _holds(cond: Mapping[str, Any], env: Mapping[str, str], where: str, places: Places) -> bool:
    if cond.get("kubeContext"):
        return False  # regless has no Kubernetes context: such a condition never holds (active() says so)
    ok = True
    if cond.get("command"):
        ok = _search(str(cond["command"]), COMMAND)
    if cond.get("env"):
        key, sep, value = str(cond["env"]).partition("=")
        if not sep:
            raise places.fail(f"{where}.env {cond['env']!r} must be KEY=VALUE", cond, "env")
        ok = ok and (not env.get(key, "") if value == "" else _search(value, env.get(key, "")))
    return ok


def active(profiles: Sequence[Any], named: Sequence[str], env: Mapping[str, str], places: Places,
           notes: list[str] | None = None) -> list[Any]:
    """The profiles that apply, in Skaffold's order: auto-activated ones, then those named with -p.

    An activation on `kubeContext` never holds here (regless has no cluster); `notes` gets a line saying so.
    """
    names = [str(p.get("name", "")) for p in profiles]
    on: list[str] = []
    for i, p in enumerate(profiles):
        conds = p.get("activation") or []
        if notes is not None and names[i] not in named and any((c or {}).get("kubeContext") for c in conds):
            notes.append(f"profile {names[i]!r} activates on a kubeContext, which regless does not have: it is "
                         f"not activated that way (name it with -p {names[i]} to apply it)")
        where = f"profiles[{i}].activation"
        results = [_holds(c or {}, env, f"{where}[{j}]", places) for j, c in enumerate(conds)]
        if (all(results) if p.get("requiresAllActivations") else any(results)) and results:
            on.append(names[i])
    for n in named:
        if n.startswith("-"):
            on = [x for x in on if x != n[1:]]
        elif n in names and n not in on:
            on.append(n)
    return [profiles[names.index(n)] for n in on]


def _overlay(base: Any, over: Any, key: str = "") -> Any:
    if over is None:
        return base
    if isinstance(over, dict):
        if key in _ONE_OF or not isinstance(base, dict):
            return over
        merged = copy.copy(base)
        if isinstance(merged, Map) and isinstance(base, Map):  # a shallow copy shares the key lines: its own
            merged.at, merged.raw = dict(base.at), dict(base.raw)
        if key == "build" and any(over.get(t) is not None for t in _BUILD_TYPES):
            for t in _BUILD_TYPES:
                merged.pop(t, None)
        for k, v in over.items():
            merged[k] = _overlay(base.get(k), v, k)
            if isinstance(merged, Map) and isinstance(over, Map) and k in over.at:
                merged.at[k] = over.at[k]
                merged.raw.pop(k, None)
                if k in over.raw:
                    merged.raw[k] = over.raw[k]
        return merged
    if isinstance(over, list):
        return over if over else base
    return over if over not in ("", 0, False) else base


def apply(config: Map, profile: Map, index: int, places: Places) -> Map:
    """The config with one profile applied: its sections overlaid, then its patches."""
    out = copy.copy(config)
    for key in PIPELINE_KEYS:
        if profile.get(key) is not None:
            out[key] = _overlay(config.get(key), profile[key], key)
    patches = profile.get("patches") or []
    for j, patch in enumerate(patches):
        where = f"profiles[{index}].patches[{j}]"
        if not isinstance(patch, dict) or not patch.get("path"):
            raise places.fail(f"{where} needs a `path`", patches, j)
        op: dict[str, Any] = {"op": str(patch.get("op") or "replace"), "path": str(patch["path"])}
        if patch.get("from") is not None:
            op["from"] = str(patch["from"])
        if op["op"] in ("add", "replace", "test"):
            op["value"] = patch.get("value")
        try:
            out = jsonpatch.apply_patch(out, [op])
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise places.fail(f"{where} ({op['op']} {op['path']}) of profile {profile.get('name')!r} does not apply: "
                              f"{exc}", patches, j, hint="the path is a JSON Pointer into the config, e.g. "
                              "/build/artifacts/0/docker/dockerfile") from exc
        except (TypeError, ValueError) as exc:
            raise places.fail(f"{where}: {exc}", patches, j) from exc
    return out


def names(profiles: Sequence[Any]) -> list[str]:
    """The names of a config's profiles, as written."""
    return [str(p.get("name")) for p in profiles if isinstance(p, dict) and isinstance(p.get("name"), Str)]
