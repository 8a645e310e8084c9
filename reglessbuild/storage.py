"""Where buildah keeps the images regless builds: a storage of regless's own per user, unless one was chosen.

buildah's default storage is the user's own, shared with everything else they build: image names pile up
run after run (a build's "Successfully tagged" line then lists another project's names for the same image
ID), nothing cleans it, and each buildah call slows down as it lists them. So regless points buildah at a
storage of its own, `<data home>/regless/containers` (through CONTAINERS_STORAGE_CONF, to a storage.conf it
writes there), unless CONTAINERS_STORAGE_CONF is already set: then the user chose, and that is used. The
images regless built are removed once the run is over (unless --keep-images; the registry holds them, and buildah's
layer cache stays), and `regless cache prune --builder-storage` empties regless's own storage. On regless's own
storage the removal is left running after the run (Claim.release); anything that must see the storage settled
takes the storage's lock first (Claim, settled).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import proc
from .errors import InputError


@dataclass(frozen=True)
class Storage:
    """The containers-storage buildah is to use, given to it through CONTAINERS_STORAGE_CONF: regless's own
    per user (so that it may empty it) or the one the user chose (never emptied)."""

    conf: Path  # the storage.conf buildah reads (CONTAINERS_STORAGE_CONF)
    own: bool  # regless's own; False: the user's choice
    graph: Path | None = None  # regless's own: where the images are


def folder(env: Mapping[str, str] | None = None) -> Path:
    """regless's own storage folder: $XDG_DATA_HOME/regless/containers, else ~/.local/share/regless/containers."""
    env = os.environ if env is None else env
    data = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(data) / "regless" / "containers"


def choose(driver: str, env: Mapping[str, str] | None = None) -> Storage:
    """The user's storage when CONTAINERS_STORAGE_CONF names one, else regless's own for `driver` (one graph
    root per driver: containers/storage refuses a graph root made by another driver)."""
    env = os.environ if env is None else env
    if users := env.get("CONTAINERS_STORAGE_CONF"):
        return Storage(Path(users), own=False)
    top = folder(env)
    graph = top / driver
    run = Path(env["XDG_RUNTIME_DIR"]) / "regless-containers" if env.get("XDG_RUNTIME_DIR") else top / "run"
    text = (f'[storage]\ndriver = "{driver}"\ngraphroot = "{graph}"\nrunroot = "{run}"\n'
            f'rootless_storage_path = "{graph}"\n')  # a rootless user's graph root is read from here
    conf = top / f"storage-{driver}.conf"
    try:
        top.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not conf.is_file() or conf.read_text(encoding="utf-8") != text:
            conf.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write regless's buildah storage config {conf}: {exc.strerror}",
                         hint="make the folder writable, or set CONTAINERS_STORAGE_CONF to a storage of your own"
                         ) from exc
    return Storage(conf, own=True, graph=graph)


class Claim:
    """This run's claim on buildah's storage, so that it removes nothing another regless run may still use.

    A required artifact is pulled by digest for another artifact's FROM; once the run is over, regless
    removes it from the storage. Two runs at once on one storage (two CI jobs of one runner, a user's
    two terminals) need the same image: one run's removal could take it from under the other's build,
    between buildah finding it and using it. Every run holds a shared flock on one file (`regless.lock`
    in regless's own storage folder, `storage.lock` in the cache folder where the user chose the storage)
    while it builds; a run removes images only where it can make that lock exclusive,
    that is when no other run holds it, and otherwise leaves them for a later run to remove. Where the
    lock file cannot be made (a folder that is not the user's), runs are not told apart: the images
    are removed, as before there was a claim. Taking the claim waits while the lock is held exclusively:
    by a removal (a run's end, one an earlier run left running on regless's own storage, `cache prune
    --builder-storage`), so that a run never builds while images leave under it. A run takes it when it
    first starts buildah (Claiming), not at its start: one that builds nothing (a restart, retags) never
    waits for an earlier run's removal.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = _locked(path, 0)  # opened; locked when the run first uses the storage (take)
        self._taken = False
        self._taking = threading.Lock()

    def take(self) -> None:
        """Hold the storage, shared, from now to the run's end, waiting while a removal holds it exclusively
        (release, empty). Once: later calls return at once; one from another thread while the first waits,
        waits with it (builds start on several threads)."""
        with self._taking:
            if self._taken or self._fd < 0:
                return
            with contextlib.suppress(OSError):  # no lock to be had: runs are not told apart, as without a file
                fcntl.flock(self._fd, fcntl.LOCK_SH)
            self._taken = True

    def alone(self) -> bool:
        """Whether no other regless run holds the storage now (the claim is then exclusive until closed)."""
        if self._fd < 0:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self, names: list[str], driver: str, *, detach: bool = False) -> bool:
        """Remove this run's images `names` from buildah's storage, with those earlier runs left for later,
        where no other regless run holds the storage; else add them to that list (`<lock>.pending`) for
        a later run to remove. Whether they were removed (`detach`: are being removed).

        `detach` (regless's own storage): by one `buildah rmi` left running after this run (proc.detach),
        which holds this claim, exclusive, until it exits, as `git gc --auto` runs in the background
        (gc.autoDetach): the run's end does not wait for housekeeping, and nothing waits for it but what
        must see the storage settled (the next run's Claim, `cache prune --builder-storage`). Not where
        the user chose the storage: this lock is then the cache folder's, which does not tell apart runs
        given other cache folders, and a user who gives a storage or a cache folder per run may delete
        it right after the run: there the run ends once its images are gone, as before."""
        pending = self.path.with_name(self.path.name + ".pending")
        if not self.alone():
            if names:
                with contextlib.suppress(OSError), open(pending, "a", encoding="utf-8") as f:
                    f.write("".join(f"{n}\n" for n in names))
            return False
        try:
            earlier = pending.read_text(encoding="utf-8").split()
        except OSError:
            earlier = []
        refs = [*earlier, *names]
        if not (detach and refs and self._fd >= 0 and proc.detach(_rmi(refs, driver), keep_fd=self._fd)):
            remove(refs, driver)
        with contextlib.suppress(OSError):
            pending.unlink()
        return True

    def close(self) -> None:
        """Give the claim up (the process's exit does as well)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Claiming:
    """The subprocess seam (proc.Processes) of a run's builder: each process starts once the run's claim on
    buildah's storage is taken (Claim.take), so the claim is taken when the run first uses the storage.
    A run that starts no builder process then never waits for the removal an earlier run left running,
    which after a build of many images outlives that run; the builder's every process, pulls and pushes
    included, comes after the claim."""

    def __init__(self, claim: Claim, procs: proc.Processes = proc.LOCAL) -> None:
        self.claim = claim
        self.procs = procs

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
            install_hint: str = "") -> proc.Completed:
        """proc.run, once the claim is taken."""
        self.claim.take()
        return self.procs.run(argv, env=env, timeout=timeout, install_hint=install_hint)

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *, env: dict[str, str] | None = None,
               install_hint: str = "", aside: Callable[[str], bool] | None = None) -> proc.Completed:
        """proc.stream, once the claim is taken."""
        self.claim.take()
        return self.procs.stream(argv, on_line, env=env, install_hint=install_hint, aside=aside)

    def terminate_all(self, grace: float = 5.0) -> None:
        """Stop every tool still running (a cancelled run), as the wrapped seam does."""
        self.procs.terminate_all(grace)


def _locked(path: Path, how: int) -> int:
    """`path` opened (made, 0600, in a 0700 folder) and flock-ed `how` (0: not locked; BlockingIOError: LOCK_NB,
    and another holds it); -1 where it cannot be made (a folder that is not the user's): runs are then not
    told apart."""
    fd = -1
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if how:
            fcntl.flock(fd, how)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        if isinstance(exc, BlockingIOError):  # LOCK_NB, and another holds it
            raise
        return -1
    return fd


def lock_path(store: Storage, cache_dir: Path) -> Path:
    """The lock that tells regless's runs on this storage apart (Claim): `regless.lock` beside regless's own
    storage, `storage.lock` in the cache folder where the user chose the storage."""
    return store.conf.parent / "regless.lock" if store.own else cache_dir / "storage.lock"


def _rmi(refs: list[str], driver: str) -> list[str]:
    return ["buildah", "--storage-driver", driver, "rmi", *refs]


def remove(refs: list[str], driver: str) -> None:
    """Remove these images from buildah's storage where they are (a required artifact pulled by digest for
    another's FROM carries the earlier run's name; its content is the registry's): failures are no error.
    One process for them all: `buildah rmi` goes on past a name it does not find."""
    if refs:
        proc.run(_rmi(refs, driver))


def empty(store: Storage, driver: str, waiting: Callable[[], None] | None = None) -> int:
    """Remove every image and working container from regless's own storage; returns the images removed.
    First the storage's lock, exclusive: a run building on it, or the removal an earlier run left running
    (Claim.release), ends before (`waiting` is called where it must wait)."""
    if not store.own:
        raise InputError(f"buildah uses your storage (CONTAINERS_STORAGE_CONF={store.conf}); regless empties only "
                         "its own", hint="unset CONTAINERS_STORAGE_CONF to use regless's, or use `buildah rmi`")
    lock = lock_path(store, store.conf.parent)
    try:
        fd = _locked(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if waiting is not None:
            waiting()
        fd = _locked(lock, fcntl.LOCK_EX)
    try:
        return _empty(store, driver)
    finally:
        if fd >= 0:
            os.close(fd)


def _empty(store: Storage, driver: str) -> int:
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(store.conf)}
    base = ["buildah", "--storage-driver", driver]
    listed = proc.run([*base, "images", "--all", "--quiet", "--noheading"], env=env,
                      install_hint="install buildah (apt-get install buildah)")
    count = len(set(listed.stdout.decode().split())) if listed.ok else 0
    proc.run([*base, "rm", "--all"], env=env)
    done = proc.run([*base, "rmi", "--all", "--force"], env=env)
    if not done.ok and count:
        raise InputError(f"buildah rmi --all in {store.graph} failed: {done.stderr_text[-300:]}")
    return count
