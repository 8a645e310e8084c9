"""The same fault in a regless.yaml and in a skaffold.yaml gets the same message, hint and place: both loaders
translate their file into artifactspec.Spec and one function checks it (issue 16, point 4)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reglessbuild import config
from reglessbuild.errors import ConfigError

# fault -> (the artifacts, in regless.yaml's keys; a word on the line the error must point at)
FAULTS: dict[str, tuple[list[dict[str, Any]], str]] = {
    "image with a tag": ([{"image": "app:1"}], "app:1"),
    "image not a reference": ([{"image": "App"}], "App"),
    "context missing": ([{"image": "app", "context": "nope"}], "context:"),
    "Dockerfile missing": ([{"image": "app", "dockerfile": "Nope.dockerfile"}], "Nope.dockerfile"),
    "platform not parsed": ([{"image": "app", "platforms": ["linux/amd64", "linux"]}], "- linux\n"),
    "platform twice": ([{"image": "app", "platforms": ["linux/amd64", "linux/x86_64"]}], "linux/x86_64"),
    "alias not a build arg name": ([{"image": "app"}, {"image": "web", "requires": [{"image": "app", "alias": "1bad"}]}],
                                   "1bad"),
    "alias with a dash": ([{"image": "app"}, {"image": "web", "requires": [{"image": "app", "alias": "x-y"}]}], "x-y"),
    "requires an unknown artifact": ([{"image": "app", "requires": [{"image": "ghost", "alias": "G"}]}],
                                     "ghost"),
    "image built twice": ([{"image": "app"}, {"image": "other"}, {"image": "app"}], "- image: app"),
}


def _regless(folder: Path, arts: list[dict[str, Any]]) -> Path:
    path = folder / "regless.yaml"
    path.write_text(yaml.safe_dump({"artifacts": arts}, sort_keys=False))
    return path


def _skaffold(folder: Path, arts: list[dict[str, Any]]) -> Path:
    """The same artifacts in skaffold.yaml's words: the Dockerfile under `docker`."""
    def one(a: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in a.items() if k != "dockerfile"}
        return out | ({"docker": {"dockerfile": a["dockerfile"]}} if "dockerfile" in a else {})

    path = folder / "skaffold.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "skaffold/v4beta13", "kind": "Config",
                                    "build": {"artifacts": [one(a) for a in arts]}}, sort_keys=False))
    return path


def _fault(path: Path) -> tuple[str, str | None, str]:
    """The error's message (in regless.yaml's field names), its hint, and the text of the line it points at."""
    with pytest.raises(ConfigError) as exc:
        config.load(path, env={})
    error = exc.value
    assert error.path == str(path) and error.line is not None, str(error)
    message = error.message.removeprefix(f"{path}:{error.line}: ")
    neutral = message.replace("build.artifacts", "artifacts").replace(".docker.", ".")
    neutral = re.sub(r"CONFIG:\d+", "CONFIG:N", neutral.replace(str(path.parent), "FOLDER").replace(path.name, "CONFIG"))
    return neutral, error.hint, path.read_text().splitlines()[error.line - 1] + "\n"


@pytest.mark.parametrize("fault", FAULTS)
def test_the_same_fault_gets_the_same_message_in_either_file(tmp_path: Path, fault: str) -> None:
    arts, on_line = FAULTS[fault]
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    regless = _fault(_regless(tmp_path, arts))
    skaffold = _fault(_skaffold(tmp_path, arts))
    assert regless[:2] == skaffold[:2]
    assert regless[1], f"{fault}: no hint"  # how to fix it
    assert on_line in regless[2] and on_line in skaffold[2]
