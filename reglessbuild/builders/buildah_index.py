"""buildah's multi-platform build: one `buildah build --platform P --manifest LIST` per platform, then
`buildah manifest push --all LIST docker://IMAGE:HASH` pushes every platform's image and the image
index that names them, whose digest (`--digestfile`) is the artifact's.

The list is a local name of this build only, removed afterwards. Unless --keep-images, each platform's
image gets a name of this build's own too (IMAGE:HASH-OS-ARCH-xxxxxxxx) and that name is removed
afterwards, so the image leaves buildah's storage as a single-platform one does (buildah.py) and none
stays there unnamed; another process's image of the same inputs keeps its own name. Platforms are built
one after the other, so that a failure names its platform; a RUN step of a foreign platform that cannot start
(no binfmt_misc handler: `exec format error`) says so, naming qemu-user-static and binfmt_misc.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from .. import proc
from ..dockerfile import declare_automatic_args
from ..errors import BuildError
from ..platforms import foreign_run_failure
from ..settings import BuildahSettings
from .buildah_cli import INSTALL_HINT, Session, build_argv, global_argv, pull_failed, push_failed
from .protocol import BuildRequest


def platform_build_argv(req: BuildRequest, settings: BuildahSettings, platform: str, manifest: str,
                        name: str | None = None) -> list[str]:
    """The build of one platform, added to the local list `manifest`, and named `name` (else unnamed)."""
    argv = build_argv(replace(req, platform=platform, platforms=()), settings)
    i = len(argv) - 1 - argv[::-1].index("-t")
    return [*argv[:i], "--manifest", manifest, *(["-t", name] if name else []), *argv[i + 2:]]


def platform_names(req: BuildRequest) -> dict[str, str]:
    """A local name of this build's own for each platform's image (IMAGE:HASH-OS-ARCH-xxxxxxxx)."""
    own = os.urandom(4).hex()
    tag = req.destination.tag or "latest"
    return {p: str(req.destination.with_tag(f"{tag}-{p.replace('/', '-')}-{own}")) for p in req.platforms}


def manifest_push_argv(req: BuildRequest, settings: BuildahSettings, manifest: str, digestfile: str) -> list[str]:
    """Push the local list `manifest` and every image it names as IMAGE:HASH, writing the index's digest."""
    tls = ["--tls-verify=false"] if req.insecure_push else ["--cert-dir", req.cert_dir] if req.cert_dir else []
    # --log-level=debug: its containers/image lines tell a 429's Retry-After to regless's reruns (buildah.py)
    return [*global_argv(settings), "manifest", "push", "--log-level=debug", "--all", "--digestfile", digestfile, *tls,
            manifest, f"docker://{req.destination}"]


def manifest_rm_argv(settings: BuildahSettings, manifest: str) -> list[str]:
    """Remove the local list `manifest` (this build's own name) once pushed or failed."""
    return [*global_argv(settings), "manifest", "rm", manifest]


def failed(message: str, done: proc.Completed, platform: str | None) -> BuildError:
    """A build that failed; one whose foreign RUN step could not start says why and what to install."""
    foreign = foreign_run_failure(done.stderr_text, platform)
    if foreign is not None:
        return BuildError(f"{message}: {foreign[0]}. {foreign[1]}", tail=done.tail)
    return BuildError(message, tail=done.tail)


def build_index(b: Session, req: BuildRequest, on_line: Callable[[str], None]) -> str:
    """Build every platform of `req`, push them as one image index; returns the index's digest."""
    import uuid  # here: a single-platform build (declared, failed) need not import it, nor platform with it

    manifest = f"regless-index-{uuid.uuid4().hex[:12]}"
    with declared(req) as req:
        return _build_index(b, req, on_line, manifest)


def _prefixed(on_line: Callable[[str], None], platform: str) -> Callable[[str], None]:
    """`on_line` with each line marked with the platform it comes from."""
    return lambda line: on_line(f"[{platform}] {line}")


def _build_index(b: Session, req: BuildRequest, on_line: Callable[[str], None], manifest: str) -> str:
    names = {} if b.keep_images else platform_names(req)
    built: list[str] = []  # the names given so far
    try:
        for platform in req.platforms:
            say = _prefixed(on_line, platform)
            done = b.again(platform_build_argv(req, b.settings, platform, manifest, names.get(platform)), say,
                            pull_failed)
            if not done.ok:
                raise failed(f"buildah build for {platform} exited {done.returncode}", done, platform)
            built += [names[platform]] if platform in names else []
        import tempfile  # once built: a single-platform build need not import it before buildah starts

        with tempfile.TemporaryDirectory(prefix="regless-push-") as tmp:
            digestfile = os.path.join(tmp, "digest")
            pushed = b.again(manifest_push_argv(req, b.settings, manifest, digestfile), on_line, push_failed)
            if not pushed.ok:
                raise BuildError(f"buildah manifest push of {req.destination} exited {pushed.returncode}",
                                 tail=pushed.tail)
            with open(digestfile, encoding="ascii") as f:
                digest = f.read().strip()
    finally:
        b.procs.run(manifest_rm_argv(b.settings, manifest), install_hint=INSTALL_HINT)
        b.leave(built, on_line)
    if not digest.startswith("sha256:"):
        raise BuildError(f"buildah manifest push wrote no digest for {req.destination}")
    return digest


@contextlib.contextmanager
def declared(req: BuildRequest) -> Iterator[BuildRequest]:
    """`req` with a Dockerfile that declares the automatic platform ARGs its FROM lines use (buildah 1.28
    expands only declared ones there; see dockerfile.declare_automatic_args), in a temporary folder with
    a copy of the Dockerfile's own .dockerignore; `req` itself when nothing needs declaring."""
    try:
        text = req.dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        yield req
        return
    changed = declare_automatic_args(text)
    if changed is None:
        yield req
        return
    import tempfile  # only a Dockerfile that needs the ARGs declared: most builds start without it

    with tempfile.TemporaryDirectory(prefix="regless-dockerfile-") as tmp:
        path = Path(tmp) / req.dockerfile.name
        path.write_text(changed, encoding="utf-8")
        own_ignore = req.dockerfile.with_name(req.dockerfile.name + ".dockerignore")
        if own_ignore.is_file():
            shutil.copyfile(own_ignore, Path(tmp) / own_ignore.name)
        yield replace(req, dockerfile=path)
