"""A runtime folder for buildah, skopeo and crane when the session gives none (rootless, no login session).

containers/image and containers/storage keep a user's runtime state under $XDG_RUNTIME_DIR (skopeo looks
for `$XDG_RUNTIME_DIR/containers/auth.json`, buildah puts its run root and locks there). A user started
with bare `su`/`runuser`, as many CI images start their jobs, has no login session and so no such folder:
the tools fall back to /run/containers/<uid> or /run/user/<uid>, which that user cannot write, and fail
(`open /run/containers/1000/auth.json: permission denied`). regless then hands its tools a folder of the
user's own, created 0700, and says so with -v. Root keeps the tools' own defaults.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RuntimeDir:
    """The runtime folder regless gives buildah, skopeo and crane where the session has no usable
    XDG_RUNTIME_DIR, with the reason, which -v shows."""

    path: Path
    reason: str  # why regless chose it: what was wrong with the session's


def _ours(path: Path, uid: int) -> bool:
    """A real folder (no symlink) of this user that no one else may enter: safe to keep state in."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_mode & 0o077 == 0


def _usable(path: Path, uid: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and os.access(path, os.W_OK | os.X_OK)


def ensure(env: Mapping[str, str] | None = None, *, uid: int | None = None,
           tmp: str | None = None) -> RuntimeDir | None:
    """None when the tools need nothing (root, or XDG_RUNTIME_DIR is a writable folder of the user's);
    else a folder for them: $TMPDIR/regless-runtime-<uid> when it is the user's own and 0700 (made so if
    missing), or a fresh private one when that name is taken by anyone or anything else."""
    env = os.environ if env is None else env
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return None
    current = env.get("XDG_RUNTIME_DIR")
    if current and _usable(Path(current), uid):
        return None
    import tempfile  # only here: a run with a login session does not pay for the import

    reason = (f"XDG_RUNTIME_DIR {current} is not a writable folder of yours" if current
              else "XDG_RUNTIME_DIR is not set (no login session)")
    base = Path(tmp or tempfile.gettempdir())
    path = base / f"regless-runtime-{uid}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return RuntimeDir(Path(tempfile.mkdtemp(prefix=f"regless-runtime-{uid}-", dir=tmp)), reason)
    if not _ours(path, uid):
        path = Path(tempfile.mkdtemp(prefix=f"regless-runtime-{uid}-", dir=tmp))  # mkdtemp makes it 0700
    return RuntimeDir(path, reason)
