"""The console script's end (cli.entry): the process ends without the interpreter's teardown, and loses
nothing by it: every byte written, the exit code, the exit handlers; a thread still running is waited for."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from conftest import REGLESS


def _entry(main_body: str) -> subprocess.CompletedProcess[str]:
    """Run cli.entry in a new interpreter with `main` replaced by a function of body `main_body`."""
    code = textwrap.dedent("""\
        import atexit, sys, threading, time
        from reglessbuild import cli
        atexit.register(lambda: sys.stderr.write("exit handler ran\\n"))
        def main():
        {body}
        cli.main = main
        cli.entry()
        print("after entry")
        """).format(body=textwrap.indent(textwrap.dedent(main_body), "    "))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as a user's shell has it
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_entry_flushes_what_was_written_runs_exit_handlers_and_keeps_the_code():
    p = _entry("""\
        for _ in range(1_000):  # more than a pipe's buffer, in small writes: the last ones still buffered
            sys.stdout.write("x" * 200)
        sys.stderr.write("partial line")
        return 3
        """)
    assert p.returncode == 3
    assert p.stdout == "x" * 200_000  # and nothing after entry: the process ended there
    assert p.stderr == "partial lineexit handler ran\n"


def test_entry_waits_for_a_thread_still_running():
    p = _entry("""\
        def late():
            time.sleep(0.5)
            print("thread done", flush=True)
        threading.Thread(target=late).start()
        return 1
        """)
    assert p.returncode == 1
    assert p.stdout == "thread done\n"
    assert p.stderr == "exit handler ran\n"


def test_the_console_script_ends_through_entry():
    """The script is front.entry, which runs a command in process through cli.main and cli.end (or hands
    it to the warm server: tests/test_warm.py)."""
    script = open(REGLESS, encoding="utf-8").read()
    assert "from reglessbuild.front import entry" in script, script
    import inspect

    from reglessbuild import front

    assert "cli.end(code)" in inspect.getsource(front.entry)
