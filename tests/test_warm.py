"""The warm server (reglessbuild/warm): a command line it runs is the command line run here — the same
output, exit code, folder, environment and terminal — and it never runs code other than the install's.

Real parts: the installed console script, the real server process, real buildah and the registry."""

from __future__ import annotations

import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REGLESS, ROOT, Result

# each test's slow RUN step sleeps its own time, so that tests running at once (and test_builders' own
# `sleep 3141`) do not see each other's in the process list
SLEEP = f"sleep {4000 + os.getpid() % 1000}{time.time_ns() % 1000:03d}"


class Warm:
    """A project's command lines with the warm server on, in a socket folder of the test's own."""

    def __init__(self, project, **extra: str) -> None:  # type: ignore[no-untyped-def]
        self.project = project
        self.top = tempfile.mkdtemp(prefix="rw-")  # short: a socket's path has at most 107 bytes
        self.env = {**project.env, "REGLESS_SERVER": "1", "TMPDIR": self.top, "REGLESS_SERVER_IDLE": "120",
                    **extra}
        self.argv = [REGLESS]
        self.cwd = project.path

    def run(self, *args: str, **env: str) -> Result:
        argv = [*self.argv, *args]
        if args[0] in ("build", "plan", "hash", "deps"):
            argv += ["--default-repo", self.project.repo, "-f", str(self.project.path / "regless.yaml")]
        p = subprocess.run(argv, cwd=self.cwd, env={**self.env, **env}, capture_output=True,
                           text=True, timeout=600)
        return Result(p.returncode, p.stdout, p.stderr)

    def status(self) -> tuple[int, int] | None:
        """(the server's pid, command lines served), or None where none runs."""
        out = self.run("server").stdout
        m = re.search(r"^warm server (\d+): up \d+ s, (\d+) command lines served", out, re.M)
        return (int(m[1]), int(m[2])) if m else None

    def wait(self, timeout: float = 120.0) -> tuple[int, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if s := self.status():
                return s
            time.sleep(0.2)
        pytest.fail("no warm server answered")

    def close(self) -> None:
        if s := self.status():
            self.run("server", "stop")
            _gone(s[0])
        shutil.rmtree(self.top, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def _gone(pid: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


@pytest.fixture
def warm(demo):  # type: ignore[no-untyped-def]
    w = Warm(demo)
    yield w
    w.close()


def test_a_build_through_the_server_is_the_build_without_it(warm, demo):
    first = warm.run("build", "--output", "json")  # no server yet: runs here, then starts one
    assert first.returncode == 0, first.stderr
    assert set(first.outcomes().values()) == {"built"}
    pid, served = warm.wait()
    assert served == 0
    conf = demo.path / "app" / "app.conf"
    conf.write_text(conf.read_text() + "changed\n")
    second = warm.run("build", "--output", "json")
    assert second.returncode == 0, second.stderr
    assert second.outcomes() == {"app": "built", "web": "cached", "tools": "cached"}
    assert warm.status() == (pid, 1)  # it ran the build (`regless server` is never served)
    # what the server prints is what the command prints without it, byte for byte
    for args in (("plan",), ("hash", "app"), ("deps", "app", "--offline"), ("explain", "app")):
        served_res, here = warm.run(*args), warm.run(*args, REGLESS_SERVER="0")
        assert (served_res.returncode, served_res.stdout, served_res.stderr) == \
            (here.returncode, here.stdout, here.stderr), args
    assert warm.status() == (pid, 5)


def test_bad_input_through_the_server_is_exit_2_with_the_same_words(warm):
    warm.run("hash", "app")
    pid, served = warm.wait()
    res, here = warm.run("hash", "nosuch"), warm.run("hash", "nosuch", REGLESS_SERVER="0")
    assert res.returncode == here.returncode == 2
    assert res.stderr == here.stderr and "no artifact named 'nosuch'" in res.stderr
    bad = warm.run("plan", "--jobs", "0")  # argparse's usage error, in the child
    assert bad.returncode == 2 and "is not a number of jobs" in bad.stderr
    assert warm.status() == (pid, served + 2)


def _slow(demo) -> None:  # type: ignore[no-untyped-def]
    df = demo.path / "tools" / "Dockerfile"
    df.write_text(df.read_text() + f"RUN {SLEEP}\n")


def _start_slow_build(warm):  # type: ignore[no-untyped-def]
    p = subprocess.Popen([REGLESS, "build", "tools", "--default-repo", warm.project.repo], cwd=warm.project.path,
                         env=warm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _running(SLEEP):
        if time.monotonic() > deadline or p.poll() is not None:
            p.kill()
            pytest.fail(f"the slow build never started: {p.communicate()}")
        time.sleep(0.2)
    return p


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_client_cancels_the_command_it_runs(warm, demo, sig, code):
    warm.run("hash", "tools")
    _pid, served = warm.wait()
    _slow(demo)
    p = _start_slow_build(warm)
    assert warm.status()[1] == served + 1  # the server runs it
    p.send_signal(sig)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert "cancelled" in err
    assert not _running(SLEEP), "builder left running"


def test_a_client_killed_stops_the_command_it_ran(warm, demo):
    warm.run("hash", "tools")
    warm.wait()
    _slow(demo)
    p = _start_slow_build(warm)
    p.kill()
    p.wait()
    deadline = time.monotonic() + 60
    while _running(SLEEP) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(SLEEP), "the command went on without its client"


def test_changed_code_is_never_run_by_an_older_server(warm, tmp_path):
    """A server runs only the code it imported: once a file of it changes, it steps aside, the command
    runs in the client's process, and a new server starts."""
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "reglessbuild", lib / "reglessbuild", ignore=shutil.ignore_patterns("__pycache__"))
    warm.env["PYTHONPATH"] = str(lib)
    warm.argv = [sys.executable, "-c", "from reglessbuild.front import entry; entry()"]
    before = warm.run("hash", "app")
    assert before.returncode == 0, before.stderr
    old, _ = warm.wait()
    assert warm.run("hash", "app").stdout == before.stdout and warm.status() == (old, 1)
    module = lib / "reglessbuild" / "dockerfile.py"
    os.utime(module, ns=(time.time_ns(), module.stat().st_mtime_ns + 10**9))
    after = warm.run("hash", "app")
    assert after.returncode == 0 and after.stdout == before.stdout, after.stderr
    assert _gone(old), "the server of the older code is still running"
    new, served = warm.wait()
    assert new != old and served == 0  # the command ran in its own process; the new server served none yet


def test_a_shell_with_other_limits_runs_its_command_itself(warm):
    """A forked child has the server's resource limits (and cgroup, namespaces...), not the client's: a
    client whose differ is not served, and its command runs in its own process with its own."""
    import resource

    warm.run("hash", "app")
    pid, served = warm.wait()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lower = min(soft, 512) - 1

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (lower, hard))

    code = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    assert subprocess.run([sys.executable, "-c", code], preexec_fn=limited, capture_output=True, text=True).stdout.strip() == str(lower)
    p = subprocess.run([REGLESS, "hash", "app", "--default-repo", warm.project.repo], cwd=warm.project.path,
                       env=warm.env, preexec_fn=limited, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout == warm.run("hash", "app").stdout
    assert warm.status() == (pid, served + 1)  # the limited one ran itself; the one after was served


@pytest.mark.parametrize("setting,expect", [({"CI": "true"}, "off (CI is set: a CI job)"),
                                            ({"JENKINS_URL": "http://ci/"}, "off (JENKINS_URL is set: a CI job)"),
                                            ({"REGLESS_SERVER": "0"}, "off (REGLESS_SERVER=0)")])
def test_no_server_is_started_or_used_where_it_is_off(warm, setting, expect):
    from reglessbuild.warm import CI_MARKERS

    env = {k: v for k, v in warm.env.items() if k != "REGLESS_SERVER" and k not in CI_MARKERS}  # a CI's own
    warm.env = {**env, **setting}
    assert warm.run("hash", "app").returncode == 0
    time.sleep(2)
    res = warm.run("server")
    assert res.stdout.startswith("no warm server runs for this install") and expect in res.stdout, res.stdout
    assert os.listdir(warm.top) == [] or not any(n.endswith(".sock") for _, _, fs in os.walk(warm.top) for n in fs)
    warm.env["REGLESS_SERVER"] = "1"  # asked for, it runs in CI too
    warm.run("hash", "app")
    warm.wait()


def test_an_idle_server_ends_and_a_stopped_one_takes_nothing_more(demo):
    idle = Warm(demo, REGLESS_SERVER_IDLE="1")
    try:
        idle.run("hash", "app")
        pid, _ = idle.wait()
        assert _gone(pid, 30), "the server outlived its idle time"
        assert idle.status() is None
        assert not [n for _, _, fs in os.walk(idle.top) for n in fs if n.endswith(".sock")]
    finally:
        idle.close()
    w = Warm(demo)
    try:
        w.run("hash", "app")
        pid, _ = w.wait()
        assert "stops" in w.run("server", "stop").stdout
        assert _gone(pid, 30) and w.status() is None
    finally:
        w.close()


def _on_a_terminal(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes]:
    """Run argv with its standard streams on a new terminal: the exit code and what the terminal showed."""
    leader, follower = pty.openpty()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every end of the terminal's follower is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return p.wait(timeout=120), shown


def test_the_command_writes_to_the_clients_terminal_as_it_would_itself(warm):
    assert warm.run("build").returncode == 0
    warm.wait()
    env = {k: v for k, v in warm.env.items() if k != "NO_COLOR"}
    argv = [REGLESS, "plan", "--default-repo", warm.project.repo]
    code, shown = _on_a_terminal(argv, warm.project.path, env)
    code_here, shown_here = _on_a_terminal(argv, warm.project.path, {**env, "REGLESS_SERVER": "0"})
    assert code == code_here == 0
    assert b"\x1b[" in shown  # coloured: the child's stdout is the terminal
    assert shown == shown_here
    assert warm.status()[1] == 1


def test_the_startup_phase_counts_from_the_clients_start_not_the_servers(warm):
    assert warm.run("build").returncode == 0
    warm.wait()
    time.sleep(3)  # the server is now 3 s older than any command line it will run
    for served in (1, 2):  # nothing changed: a restart in full, then one replayed (replay.py), each well under 3 s
        t0 = time.monotonic()
        res = warm.run("build", "--output", "json")
        wall = time.monotonic() - t0
        assert res.returncode == 0, res.stderr
        assert warm.status()[1] == served
        assert 0 <= res.json()["phases"]["startup"] <= wall


def _server_child(server: int, timeout: float = 120.0) -> int:
    """The pid of the server's one child (the command it runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{server}/task/{server}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.1)
    pytest.fail("the server runs no command")


def test_a_command_killed_outright_ends_its_client_the_same_way(warm, demo):
    warm.run("hash", "tools")
    server, _ = warm.wait()
    _slow(demo)
    p = _start_slow_build(warm)
    os.kill(_server_child(server), signal.SIGKILL)  # as the out-of-memory killer does
    try:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == -signal.SIGKILL, err
        assert "Traceback" not in err
    finally:  # its builder, in a session of its own, is left running, as by a regless killed outright
        subprocess.run(["pkill", "-f", SLEEP])


def test_the_server_keeps_none_of_the_files_its_first_client_had_open(warm, tmp_path):
    """A file the shell left open in the command that starts the server (a lock, a pipe's end) is not
    held by the server for its idle time."""
    import fcntl

    lock = tmp_path / "held.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    p = subprocess.run([REGLESS, "hash", "app", "--default-repo", warm.project.repo], cwd=warm.project.path,
                       env=warm.env, pass_fds=(fd,), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    os.close(fd)
    server, _ = warm.wait()
    assert not [f for f in os.listdir(f"/proc/{server}/fd") if os.readlink(f"/proc/{server}/fd/{f}") == str(lock)]
    again = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError where the server holds it
    finally:
        os.close(again)


def test_a_signal_before_the_server_answers_cancels_the_command_unrun(warm):
    warm.run("hash", "app")
    server, served = warm.wait()
    os.kill(server, signal.SIGSTOP)  # a server that does not answer (yet)
    try:
        p = subprocess.Popen([REGLESS, "hash", "app", "--default-repo", warm.project.repo], cwd=warm.project.path,
                             env=warm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        # with the signals blocked, the client waited for the server for ever; and were its streams sent
        # with the command line, the stopped server would hold its pipes open
        out, err = p.communicate(timeout=30)
        assert p.returncode == 130 and out == "" and "cancelled" in err, (p.returncode, err)
    finally:
        os.kill(server, signal.SIGCONT)
    assert warm.run("hash", "app").returncode == 0


def test_a_folder_gone_from_under_the_shell_runs_the_command_itself(warm, tmp_path):
    warm.run("hash", "app")
    warm.wait()
    gone = tmp_path / "gone"
    gone.mkdir()
    p = subprocess.run(["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "$@"', "sh", REGLESS, "hash", "app",
                        "-f", str(warm.project.path / "regless.yaml"), "--default-repo", warm.project.repo],
                       env=warm.env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout == warm.run("hash", "app").stdout


def test_a_tmpdir_too_long_for_a_socket_starts_no_server_and_says_so(demo):
    top = tempfile.mkdtemp(prefix="rw-")
    long = os.path.join(top, "x" * (120 - len(top)))
    os.mkdir(long)
    w = Warm(demo, TMPDIR=long)
    try:
        assert w.run("hash", "app").returncode == 0
        time.sleep(2)
        assert not _running(f"reglessbuild.warm.server .*{long}")
        out = w.run("server").stdout
        assert "no warm server can run" in out and "TMPDIR is too long" in out, out
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_relative_tmpdir_names_the_same_folder_for_client_and_server(demo):
    w = Warm(demo, TMPDIR="rel")
    w.cwd = Path(w.top)  # the commands run where TMPDIR is relative to (short: a socket's path is short)
    (w.cwd / "rel").mkdir()
    try:
        w.run("hash", "app")
        _pid, served = w.wait()
        assert w.run("hash", "app").returncode == 0
        assert w.status()[1] == served + 1
    finally:
        w.close()


def test_signals_the_client_ignores_the_command_ignores_and_ctrl_z_stops_it(warm, demo):
    warm.run("hash", "tools")
    server, _ = warm.wait()
    _slow(demo)
    nohup = lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)  # noqa: E731 - as nohup starts it
    p = subprocess.Popen([REGLESS, "build", "tools", "--default-repo", warm.project.repo], cwd=warm.project.path,
                         env=warm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=nohup)
    deadline = time.monotonic() + 120
    while not _running(SLEEP) and time.monotonic() < deadline:
        time.sleep(0.2)
    child = _server_child(server)
    assert os.getpgid(child) == child  # a group of its own, not the server's
    p.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert p.poll() is None and _running(SLEEP), "SIGHUP, ignored by the client, stopped the command"

    def state(pid: int) -> str:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]

    p.send_signal(signal.SIGTSTP)  # Ctrl-Z
    deadline = time.monotonic() + 30
    while (state(child), state(p.pid)) != ("T", "T") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (state(child), state(p.pid)) == ("T", "T")
    p.send_signal(signal.SIGCONT)  # fg
    deadline = time.monotonic() + 30
    while "T" in (state(child), state(p.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "T" not in (state(child), state(p.pid))
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert not _running(SLEEP)
