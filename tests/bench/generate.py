"""Synthetic multi-image projects for the benchmarks, deterministic from a seed.

One context (the project root) holds a folder per artifact and a `common/` folder;
each artifact's Dockerfile copies its own files and a share of the common ones,
optionally FROM a base image with a RUN step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Shape:
    artifacts: int = 50
    files: int = 1000  # input files per artifact
    size: int = 1024  # bytes per file
    shared: float = 0.2  # share of each artifact's files that come from common/
    run_steps: bool = False  # FROM ${BASE} with a RUN step, else FROM scratch
    seed: int = 1

    @property
    def total_files(self) -> int:
        own = self.files - int(self.files * self.shared)
        return self.artifacts * own + self.common_files

    @property
    def common_files(self) -> int:
        return max(1, int(self.files * self.shared) * 2) if self.shared else 0


def _write(path: Path, rng: random.Random, size: int) -> None:
    path.write_bytes(rng.randbytes(size))


def generate(root: Path, shape: Shape) -> Path:
    """Write the project under `root`; returns its regless.yaml."""
    rng = random.Random(shape.seed)
    root.mkdir(parents=True, exist_ok=True)
    n_common = shape.common_files
    shared_per_artifact = int(shape.files * shape.shared)
    if n_common:
        for c in range(0, n_common, 100):
            folder = root / "common" / f"part{c // 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(c, min(c + 100, n_common)):
                _write(folder / f"c{i:05d}.dat", rng, shape.size)
    lines = ["apiVersion: regless/v1", "registry: {insecure: [127.0.0.1], concurrency: 16}",
             "builder: {kind: buildah, concurrency: 2}", "artifacts:"]
    for a in range(shape.artifacts):
        name = f"a{a:03d}"
        own = shape.files - shared_per_artifact
        for i in range(own):
            folder = root / name / "src" / f"d{i // 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            _write(folder / f"f{i:05d}.dat", rng, shape.size)
        # a window of the common parts: neighbouring artifacts share files
        n_parts = -(-n_common // 100) if n_common else 0
        per = max(1, shared_per_artifact // 100) if shared_per_artifact else 0
        parts = sorted({f"common/part{(a + k) % n_parts:03d}/" for k in range(min(per, n_parts))})
        df = ["ARG BASE", "FROM ${BASE}"] if shape.run_steps else ["FROM scratch"]
        df.append(f"COPY {name}/src/ /app/src/")
        df += [f"COPY {p} /app/{p}" for p in parts]
        if shape.run_steps:
            df.append("RUN ls -R /app | wc -l > /app/count.txt")
        (root / name / "Dockerfile").write_text("\n".join(df) + "\n")
        lines += [f"  - image: {name}", "    context: .", f"    dockerfile: {name}/Dockerfile"]
        if shape.run_steps:
            lines.append("    buildArgs: {BASE: \"${REGLESS_BASE_IMAGE}\"}")
    (root / ".dockerignore").write_text("**/*.tmp\n")
    cfg = root / "regless.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg
