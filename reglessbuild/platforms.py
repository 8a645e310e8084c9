"""Target platforms: parse and normalize `os/arch[/variant]`, the runner's own platform, BuildKit's
automatic platform ARGs, the pick of one platform's manifest from an image index, and whether this
machine can run a foreign platform's binaries (binfmt_misc).

Platforms are normalized the way containerd's platforms package does (x86_64 is amd64, aarch64 is
arm64, arm64's variant v8 is the default and dropped, arm's default variant is v7), so that
`linux/aarch64` and `linux/arm64/v8` name one platform, one hash and one manifest.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from .errors import InputError

# BuildKit's automatic ARGs (frontend/dockerfile: defaultArgs), defined in the global scope of every
# Dockerfile: usable in FROM lines as they are, and inside a stage once it declares `ARG NAME`
AUTOMATIC_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
                  "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")
MENTIONS = re.compile(r"\b(?:TARGET|BUILD)(?:PLATFORM|OS|ARCH|VARIANT)\b")

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armhf": "arm", "armel": "arm", "arm": "arm", "i386": "386", "i486": "386", "i586": "386", "i686": "386",
         "386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64le",
         "mips64": "mips64", "loong64": "loong64"}
_ARM_FROM_MACHINE = {"armv5tel": "v5", "armv6l": "v6", "armv7l": "v7", "armv8l": "v8"}
# the name binfmt_misc handlers of qemu-user-static carry for each architecture (qemu-<name>)
_QEMU = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "mips64": "mips64", "loong64": "loongarch64"}
BINFMT = "/proc/sys/fs/binfmt_misc"


class PlatformError(InputError):
    """A platform that is not `os/arch[/variant]` (exit 2)."""


@dataclass(frozen=True, order=True)
class Platform:
    """A normalized `os/arch[/variant]`: one value per platform however it was written (parse), so that it
    hashes, sorts and matches an index's manifests the same way every time."""

    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}" + (f"/{self.variant}" if self.variant else "")

    @property
    def qemu(self) -> str:
        """The architecture's name in qemu-user-static (binfmt handler qemu-<name>)."""
        return _QEMU.get(self.arch, self.arch)


def _variant(arch: str, variant: str) -> str:
    variant = variant.lower()
    if variant and variant[0].isdigit():
        variant = "v" + variant
    if arch == "arm64" and variant in ("v8", ""):
        return ""
    if arch == "amd64" and variant == "v1":
        return ""
    if arch == "arm" and not variant:
        return "v7"
    return variant


def parse(text: str) -> Platform:
    """`linux/arm64`, `linux/arm/v7`, `linux/aarch64`…, normalized. Raises PlatformError."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(re.fullmatch(r"[a-z0-9_.-]+", p) for p in parts):
        raise PlatformError(f"platform {text!r} is not os/arch or os/arch/variant",
                            hint="for example linux/amd64, linux/arm64 or linux/arm/v7")
    os_name = "darwin" if parts[0] == "macos" else parts[0]
    raw_arch = parts[1]
    arch = _ARCH.get(raw_arch, raw_arch)
    variant = parts[2] if len(parts) == 3 else ("v6" if raw_arch == "armel" else "")
    return Platform(os_name, arch, _variant(arch, variant))


def host() -> Platform:
    """The runner's own platform: what a build without a platform targets."""
    machine = os.uname().machine.lower()  # platform.machine(), without importing platform
    if machine in _ARM_FROM_MACHINE:
        return Platform("linux", "arm", _variant("arm", _ARM_FROM_MACHINE[machine]))
    return Platform("linux", _ARCH.get(machine, machine))


def automatic_args(target: Platform, build: Platform) -> dict[str, str]:
    """BuildKit's automatic platform ARGs for one target platform, built on `build`."""
    return {"TARGETPLATFORM": str(target), "TARGETOS": target.os, "TARGETARCH": target.arch,
            "TARGETVARIANT": target.variant, "BUILDPLATFORM": str(build), "BUILDOS": build.os,
            "BUILDARCH": build.arch, "BUILDVARIANT": build.variant}


def pick(raw_manifest: bytes, want: Platform) -> str | None:
    """The digest of `want`'s manifest in an image index (or Docker manifest list); None when the
    bytes are a single image's manifest. Raises PlatformError when the index has no such platform."""
    try:
        doc = json.loads(raw_manifest)
    except ValueError:
        return None
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        return None
    offered: list[str] = []
    fallback: str | None = None
    for m in manifests:
        p = m.get("platform") if isinstance(m, dict) else None
        if not isinstance(p, dict) or not isinstance(m.get("digest"), str) or p.get("os") == "unknown":
            continue  # attestation manifests (unknown/unknown) are no platform's image
        try:
            got = parse(f"{p.get('os', '')}/{p.get('architecture', '')}"
                        + (f"/{p['variant']}" if p.get("variant") else ""))
        except PlatformError:
            continue
        offered.append(str(got))
        if got == want:
            return str(m["digest"])
        if fallback is None and (got.os, got.arch) == (want.os, want.arch) and not p.get("variant"):
            fallback = str(m["digest"])
    if fallback is not None:
        return fallback
    raise PlatformError(f"the image index has no manifest for {want}",
                        hint=f"it offers {', '.join(offered) or 'no platform'}")


def emulation(target: Platform) -> str | None:
    """Why this machine cannot run `target`'s binaries, or None when it can (its own architecture, or a
    registered and enabled binfmt_misc handler such as qemu-user-static's)."""
    if target.arch == host().arch:
        return None
    if not os.path.exists(os.path.join(BINFMT, "register")):
        return f"binfmt_misc is not mounted at {BINFMT}"
    handler = os.path.join(BINFMT, f"qemu-{target.qemu}")
    try:
        with open(handler, encoding="ascii", errors="replace") as f:
            state = f.readline().strip()
    except OSError:
        return f"no binfmt_misc handler for {target.qemu} is registered ({handler} is missing)"
    return None if state == "enabled" else f"the binfmt_misc handler {handler} is {state}"


EMULATION_HINT = ("A RUN step of a foreign platform needs an emulator: install qemu-user-static (apt-get install "
                  "qemu-user-static) and, as root, register its handler with binfmt_misc (mount -t binfmt_misc "
                  "binfmt_misc /proc/sys/fs/binfmt_misc; cat /usr/lib/binfmt.d/qemu-<arch>.conf > "
                  "/proc/sys/fs/binfmt_misc/register)")


def foreign_run_failure(output: str, platform_text: str | None) -> tuple[str, str] | None:
    """(message, hint) when a build's output shows a program that could not start for want of an emulator
    (`exec format error`) on a foreign platform; None for any other failure."""
    if "exec format error" not in output:
        return None
    target = parse(platform_text) if platform_text else host()
    why = emulation(target) or "this machine could not start its programs"
    return (f"a RUN step for {target} could not start a {target.arch} program: {why}", EMULATION_HINT)
