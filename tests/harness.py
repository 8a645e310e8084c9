"""Real parts for tests, the demo and the benchmarks: a loopback docker-registry and a busybox base image.

Nothing here is a double: the registry is CNCF Distribution (Debian's docker-registry),
the base image is built by buildah from Debian's busybox-static and pushed to it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "cat", "echo", "ls", "mkdir", "chmod", "cp", "rm", "sed", "touch", "sleep", "true", "false",
           "env", "test", "grep", "wc", "head", "tail")
STORAGE = ("--storage-driver", "vfs")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalRegistry:
    """A docker-registry process on a free loopback port, its storage in a temporary folder."""

    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    tls: tuple[Path, Path] | None = None  # (certificate, key): serve https
    htpasswd: Path | None = None  # basic auth (bcrypt entries)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        tls = f", tls: {{certificate: '{self.tls[0]}', key: '{self.tls[1]}'}}" if self.tls else ""
        auth = f"auth: {{htpasswd: {{realm: regless-test, path: '{self.htpasswd}'}}}}\n" if self.htpasswd else ""
        return ("version: 0.1\n"
                "log: {level: error, accesslog: {disabled: true}}\n"
                f"storage: {{filesystem: {{rootdirectory: {self.root / 'data'}}}, delete: {{enabled: true}}}}\n"
                f"http: {{addr: '{self.address}', relativeurls: true{tls}}}\n" + auth)

    def start(self, timeout: float = 15.0) -> LocalRegistry:
        exe = shutil.which("docker-registry")
        if not exe:
            raise RuntimeError("docker-registry not on PATH: apt-get install docker-registry")
        for _ in range(5):
            self.port = free_port()
            cfg = self.root / "config.yml"
            cfg.write_text(self._config())
            log = open(self.root / "registry.log", "ab")
            self.process = subprocess.Popen([exe, "serve", str(cfg)], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        pass
                    if self.tls:
                        return self
                    with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1) as resp:
                        if resp.status == 200:
                            return self
                except (urllib.error.URLError, ConnectionError, OSError):
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"docker-registry did not start; see {self.root / 'registry.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def storage_conf(folder: Path) -> str:
    """A containers-storage config that keeps buildah's images under `folder` (vfs); returns its path, for
    CONTAINERS_STORAGE_CONF. Without it every run adds its images to the user's own storage, which grows
    with each run and slows every later buildah call (it lists all names of an image it tags)."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{folder / "graph"}"\nrunroot = "{folder / "run"}"\n')
    return str(conf)


def own_storage_lock(data_home: Path) -> Path:
    """The lock of regless's own buildah storage for XDG_DATA_HOME=`data_home` (storage.Claim)."""
    return data_home / "regless" / "containers" / "regless.lock"


def settled(lock: Path, deadline: float = 300.0) -> float:
    """Wait, as the next regless run's claim does, until no process holds the storage lock `lock` exclusively:
    the removal a run left running on regless's own storage (storage.Claim.release) holds it until it ends.
    Polled, not slept on: a lock still held after `deadline` seconds is an error. The seconds waited (0 where
    there is no lock)."""
    if not lock.exists():
        return 0.0
    import fcntl

    t0 = time.monotonic()
    fd = os.open(lock, os.O_RDWR)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return time.monotonic() - t0
            except BlockingIOError:
                if time.monotonic() - t0 > deadline:
                    raise RuntimeError(f"{lock} still held after {deadline} s") from None
                time.sleep(0.005)
    finally:
        os.close(fd)


def make_base_image(registry: str, name: str = "base/busybox:stable") -> str:
    """Build a busybox image FROM scratch (no network) and push it; returns REF@DIGEST."""
    if not os.path.exists(BUSYBOX):
        raise RuntimeError(f"{BUSYBOX} missing: apt-get install busybox-static")
    ref = f"{registry}/{name}"
    with tempfile.TemporaryDirectory(prefix="regless-base-") as tmp:
        root = Path(tmp) / "root" / "bin"
        root.mkdir(parents=True)
        shutil.copy2(BUSYBOX, root / "busybox")
        for applet in APPLETS:
            (root / applet).symlink_to("busybox")
        (Path(tmp) / "Dockerfile").write_text('FROM scratch\nCOPY root/ /\nENV PATH=/usr/local/bin:/bin\n'
                                              'CMD ["/bin/sh"]\n')
        subprocess.run(["buildah", *STORAGE, "build", "--isolation", "chroot", "-q", "-t", ref, tmp],
                       check=True, stdout=subprocess.DEVNULL)
        digestfile = Path(tmp) / "digest"
        subprocess.run(["buildah", *STORAGE, "push", "-q", "--tls-verify=false", "--digestfile", str(digestfile),
                        ref, f"docker://{ref}"], check=True)
        return f"{ref}@{digestfile.read_text().strip()}"


# foreign busybox binaries that bin/_setup.sh extracts from Debian's busybox-static:<arch> (issue 19)
FOREIGN = Path(__file__).resolve().parent.parent / ".venv" / "foreign"


def busybox_root(folder: Path, busybox: str = BUSYBOX) -> Path:
    """A root file system of one busybox binary and its applet links."""
    root = folder / "bin"
    root.mkdir(parents=True)
    shutil.copy2(busybox, root / "busybox")
    for applet in (*APPLETS, "uname"):
        (root / applet).symlink_to("busybox")
    return folder


def fake_elf_root(folder: Path, machine: int = 0xF3) -> Path:
    """A root whose /bin/sh is only an ELF header of another machine (default RISC-V): a RUN step there
    fails with `exec format error` unless a binfmt_misc handler claims that machine."""
    root = folder / "bin"
    root.mkdir(parents=True)
    header = (b"\x7fELF\x02\x01\x01" + bytes(9) + (2).to_bytes(2, "little") + machine.to_bytes(2, "little")
              + (1).to_bytes(4, "little") + bytes(64 - 24))
    (root / "sh").write_bytes(header)
    (root / "sh").chmod(0o755)
    return folder


def make_index_image(registry: str, name: str, roots: dict[str, Path]) -> str:
    """One image per platform (FROM scratch, COPY the root), pushed as one image index; returns REF@DIGEST."""
    ref = f"{registry}/{name}"
    manifest = f"regless-test-{os.getpid()}-{time.monotonic_ns()}"
    with tempfile.TemporaryDirectory(prefix="regless-index-") as tmp:
        subprocess.run(["buildah", *STORAGE, "manifest", "create", manifest], check=True, stdout=subprocess.DEVNULL)
        try:
            for platform, root in roots.items():
                (root.parent / "Dockerfile").write_text(f"FROM scratch\nCOPY {root.name}/ /\nENV PATH=/bin\n")
                subprocess.run(["buildah", *STORAGE, "build", "--isolation", "chroot", "-q", "--platform", platform,
                                "--manifest", manifest, str(root.parent)], check=True, stdout=subprocess.DEVNULL)
            digestfile = Path(tmp) / "digest"
            subprocess.run(["buildah", *STORAGE, "manifest", "push", "-q", "--all", "--tls-verify=false",
                            "--digestfile", str(digestfile), manifest, f"docker://{ref}"], check=True)
        finally:
            subprocess.run(["buildah", *STORAGE, "manifest", "rm", manifest], stdout=subprocess.DEVNULL)
        return f"{ref}@{digestfile.read_text().strip()}"


def counting_shim(folder: Path, tool: str = "buildah") -> Path:
    """A `tool` first on PATH that logs each call to `folder/<tool>.calls`, then runs the real tool.

    Not a double: the real tool does the work; the shim only records the processes
    started ("<pid> <argv>") and ended ("end <pid> <rc>"), in the order they happen.
    """
    real = shutil.which(tool)
    if not real:
        raise RuntimeError(f"{tool} not on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{tool}.calls"
    shim = folder / tool
    shim.write_text(f'#!/bin/sh\necho "$$ $*" >> "{log}"\n"{real}" "$@"\nrc=$?\n'
                    f'echo "end $$ $rc" >> "{log}"\nexit $rc\n')
    shim.chmod(0o755)
    return log


def calls(log: Path) -> list[str]:
    """The argv of each call, in start order."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [ln.split(" ", 1)[1] for ln in lines if not ln.startswith("end ")]


def exits(log: Path) -> list[tuple[str, int]]:
    """(argv, exit code) of each call that ended, in start order."""
    lines = log.read_text().splitlines() if log.exists() else []
    started = [ln.split(" ", 1) for ln in lines if not ln.startswith("end ")]
    ended = dict(ln.split(" ")[1:3] for ln in lines if ln.startswith("end "))
    return [(argv, int(ended[pid])) for pid, argv in started if pid in ended]


def events(log: Path) -> list[tuple[str, str, str]]:
    """("start"|"end", pid, argv-or-rc) in the order they happened."""
    out = []
    for ln in log.read_text().splitlines() if log.exists() else []:
        if ln.startswith("end "):
            _, pid, rc = ln.split(" ", 2)
            out.append(("end", pid, rc))
        else:
            pid, argv = ln.split(" ", 1)
            out.append(("start", pid, argv))
    return out


def make_tls_auth(folder: Path, user: str, password: str) -> tuple[Path, Path, Path]:
    """A self-signed CA/server certificate for 127.0.0.1 (openssl) and an htpasswd file (bcrypt)."""
    import bcrypt

    cert, key, htpasswd = folder / "tls.crt", folder / "tls.key", folder / "htpasswd"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=regless-test-ca", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    htpasswd.write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    return cert, key, htpasswd
