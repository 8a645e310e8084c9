"""An exact workspace hash: what the Dockerfile reads, determinism (hypothesis), the stat memo,
base images, and the real builder's view of the context."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reglessbuild import dockerfile
from reglessbuild.errors import DockerfileError, InputError
from reglessbuild.hashing import choose, ignore, inputs, python_engine, statmemo
from reglessbuild.hashing.statmemo import pack as pack_memo


def analyze(tmp_path: Path, text: str, args: dict[str, str] | None = None, target: str | None = None):
    df = tmp_path / "Dockerfile"
    df.write_text(text)
    return dockerfile.analyze(df, build_args=args or {}, target=target)


def files_of(ctx: Path, df_text: str, args=None) -> list[str]:
    an = analyze(ctx, df_text, args)
    files, _, _ = inputs.collect(ctx, ctx / "Dockerfile", an, ignore.load(ctx, ctx / "Dockerfile"), None)
    return [f.path for f in files]


def tree(root: Path, paths: list[str]) -> Path:
    for p in paths:
        f = root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(p)
    return root


# ---------------------------------------------------------------- Dockerfile reading

def test_shell_and_json_forms_several_sources_globs_and_dirs(tmp_path):
    tree(tmp_path, ["a.txt", "b.txt", "c.md", "d/e.txt", "d/f/g.txt", "x1", "x2", "x10", "[lit]"])
    got = files_of(tmp_path, 'FROM scratch\nCOPY a.txt /j/\nCOPY ["c.md", "/"]\nCOPY d /d\nADD x? /x/\n')
    assert got == ["a.txt", "c.md", "d/e.txt", "d/f/g.txt", "x1", "x2"]
    assert files_of(tmp_path, 'FROM scratch\nCOPY ["a.txt", "b.txt", "/j/"]\nCOPY x[0-9] /x/\n') == \
        ["a.txt", "b.txt", "x1", "x2"]
    assert files_of(tmp_path, "FROM scratch\nCOPY *.txt /t/\n") == ["a.txt", "b.txt"]


def test_from_stage_image_and_urls_read_no_context(tmp_path):
    an = analyze(tmp_path, "FROM scratch AS b\nCOPY x /x\nFROM scratch\nCOPY --from=b /x /x\n"
                           "COPY --from=other.example/img:1 /y /y\nADD https://example.com/a.tgz /\n"
                           "ADD git@github.com:moby/moby.git /src\n")
    assert [s.pattern for s in an.sources] == ["x"]
    assert [b.text for b in an.bases] == ["other.example/img:1"]
    assert an.remote == ("https://example.com/a.tgz", "git@github.com:moby/moby.git")


def test_flags_heredocs_continuations_comments_and_directives(tmp_path):
    text = ("# syntax=docker/dockerfile:1.7\n# escape=`\nFROM scratch\n"
            "COPY --chown=1:1 --chmod=644 --link --parents `\n"
            "  # a comment inside the continuation\n"
            "  a.txt `\n  /dst/\n"
            "COPY <<EOF /etc/motd\nhello $HOME\nEOF\n"
            "RUN <<EOF\necho COPY nothing.txt /\nEOF\n")
    an = analyze(tmp_path, text)
    assert [(s.pattern, s.line) for s in an.sources] == [("a.txt", 4)]


def test_run_mount_bind_reads_the_context(tmp_path):
    an = analyze(tmp_path, "FROM scratch AS s\nFROM scratch\nRUN --mount=type=bind,source=req.txt,target=/r true\n"
                           "RUN --mount=type=bind,target=/all true\nRUN --mount=type=cache,target=/c true\n"
                           "RUN --mount=type=bind,from=s,source=/x,target=/y true\n")
    assert [s.pattern for s in an.sources] == ["req.txt", "."]


@pytest.mark.parametrize("line,args,want", [
    ("COPY $D/a /", {}, "dflt/a"),
    ("COPY ${D}/a /", {"D": "given"}, "given/a"),
    ("COPY ${U:-fallback}/a /", {}, "fallback/a"),
    ("COPY ${D:+alt}/a /", {}, "alt/a"),
    ("COPY ${E}/a /", {}, "from-env/a"),
    ("COPY ${G}/a /", {}, "global/a"),
])
def test_arg_and_env_expansion(tmp_path, line, args, want):
    text = f"ARG G=global\nFROM scratch\nARG G\nARG D=dflt\nENV E=from-env\n{line}\n"
    assert [s.pattern for s in analyze(tmp_path, text, args).sources] == [want]


def test_global_arg_only_in_from_unless_redeclared(tmp_path):
    an = analyze(tmp_path, "ARG V=v1\nFROM reg.example/base:${V}\nCOPY ${V:-none}/x /\n")
    assert [b.text for b in an.bases] == ["reg.example/base:v1"] and [s.pattern for s in an.sources] == ["none/x"]


def test_env_inherited_by_a_child_stage(tmp_path):
    an = analyze(tmp_path, "FROM scratch AS base\nENV DIR=lib\nFROM base\nCOPY $DIR/x /\n")
    assert [s.pattern for s in an.sources] == ["lib/x"]


def test_only_stages_the_target_needs(tmp_path):
    text = ("FROM scratch AS deps\nCOPY deps.txt /\nFROM scratch AS unused\nCOPY unused.txt /\n"
            "FROM scratch AS final\nCOPY --from=deps /deps.txt /\nCOPY final.txt /\n")
    assert [s.pattern for s in analyze(tmp_path, text).sources] == ["deps.txt", "final.txt"]
    assert [s.pattern for s in analyze(tmp_path, text, target="deps").sources] == ["deps.txt"]


def test_exclude_flag(tmp_path):
    tree(tmp_path, ["src/a.py", "src/a.md", "src/sub/b.md", "src/sub/b.py"])
    assert files_of(tmp_path, "FROM scratch\nCOPY --exclude=*.md --exclude=sub/*.md src/ /s/\n") == \
        ["src/a.py", "src/sub/b.py"]


@pytest.mark.parametrize("source", ["../x", "a/../../x", "./../x"])
def test_sources_outside_the_context(tmp_path, source):
    with pytest.raises(DockerfileError) as exc:
        analyze(tmp_path, f"FROM scratch\nCOPY {source} /\n")
    assert ":2:" in str(exc.value) and "outside the build context" in str(exc.value)


def test_symlink_source_escaping_the_context(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "secret").write_text("s")
    (ctx / "link").symlink_to("../secret")
    with pytest.raises(DockerfileError) as exc:
        files_of(ctx, "FROM scratch\n\nCOPY link /x\n")
    assert ":3:" in str(exc.value) and "outside the build context" in str(exc.value)


def test_symlink_source_inside_the_context_is_followed(tmp_path):
    tree(tmp_path, ["real/a.txt"])
    (tmp_path / "alias").symlink_to("real")
    assert files_of(tmp_path, "FROM scratch\nCOPY alias /x\n") == ["alias", "real/a.txt"]


# ---------------------------------------------------------------- determinism (property tests)

names = st.text(alphabet="abcxyz019_-.", min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
trees = st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join), st.tuples(st.binary(max_size=64),
                        st.booleans()), min_size=1, max_size=8).filter(
    lambda d: not any(a != b and b.startswith(a + "/") for a in d for b in d))


def write_tree(root: Path, spec: dict[str, tuple[bytes, bool]], order: int, umask: int, mtime: float) -> None:
    old = os.umask(umask)
    try:
        items = list(spec.items())
        random.Random(order).shuffle(items)  # another creation (and so listing) order
        for rel, (data, exe) in items:
            f = root / "src" / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data)
            f.chmod((0o755 if exe else 0o644) & ~umask | (0o100 if exe else 0))
            os.utime(f, (mtime, mtime))
        (root / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    finally:
        os.umask(old)


def whole_hash(root: Path, **settings_kw) -> str:
    df = root / "Dockerfile"
    an = dockerfile.analyze(df, build_args={}, target=None)
    files, _, _ = inputs.collect(root, df, an, ignore.load(root, df), None)
    s = inputs.Settings(**{"builder": "buildah", "dockerfile": df.read_bytes(), "target": None, "platform": None,
                           "build_args": (), "requires": (), "bases": (), "remote": (), **settings_kw})
    return inputs.workspace_hash(s, files)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=trees, seed=st.integers(0, 1000))
def test_same_tree_same_hash_anywhere(tmp_path_factory, spec, seed):
    a, b = tmp_path_factory.mktemp("clone"), tmp_path_factory.mktemp("other") / "deeper" / "clone"
    b.mkdir(parents=True)
    write_tree(a, spec, order=seed, umask=0o022, mtime=1_000_000)
    write_tree(b, spec, order=seed + 1, umask=0o077, mtime=2_000_000)
    if os.geteuid() == 0:
        for f in (b / "src").rglob("*"):
            os.chown(f, 65534, 65534)
    assert whole_hash(a) == whole_hash(b)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=trees, pick=st.integers(0, 100), change=st.sampled_from(
    ["byte", "exec", "rename", "add", "remove", "arg", "target", "platform", "dockerfile", "builder", "requires",
     "ignored", "unreferenced"]))
def test_every_input_changes_the_hash_and_nothing_else_does(tmp_path_factory, spec, pick, change):
    root = tmp_path_factory.mktemp("t")
    write_tree(root, spec, order=0, umask=0o022, mtime=1_000_000)
    (root / ".dockerignore").write_text("src/**/*.ign\n")
    before = whole_hash(root)
    rel = sorted(spec)[pick % len(spec)]
    f = root / "src" / rel
    kw: dict = {}
    if change == "byte":
        f.write_bytes(f.read_bytes() + b"\0")
    elif change == "exec":
        f.chmod(f.stat().st_mode ^ 0o100)
    elif change == "rename":
        f.rename(f.with_name(f.name + "r"))
    elif change == "add":
        (root / "src" / "new-file").write_bytes(b"")
    elif change == "remove":
        if len(spec) == 1:
            return
        f.unlink()
    elif change == "dockerfile":
        (root / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n# one more byte\n")
    elif change == "ignored":
        (root / "src" / "x.ign").write_text("ignored")
    elif change == "unreferenced":
        (root / "elsewhere.txt").write_text("no COPY reads this")
    else:
        kw = {"arg": {"build_args": (("A", "1"),)}, "target": {"target": "t"}, "platform": {"platform": "linux/arm64"},
              "builder": {"builder": "kaniko"}, "requires": {"requires": (("B", "0" * 32),)}}[change]
    after = whole_hash(root, **kw)
    assert (after == before) is (change in ("ignored", "unreferenced"))


def test_symlink_target_and_file_type_change_the_hash(tmp_path):
    tree(tmp_path, ["src/a", "src/b"])
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    (tmp_path / "src" / "l").symlink_to("a")
    h1 = whole_hash(tmp_path)
    (tmp_path / "src" / "l").unlink()
    (tmp_path / "src" / "l").symlink_to("b")
    h2 = whole_hash(tmp_path)
    (tmp_path / "src" / "l").unlink()
    (tmp_path / "src" / "l").write_text("b")
    assert len({h1, h2, whole_hash(tmp_path)}) == 3


def test_a_name_that_is_not_utf8_enters_the_hash_as_its_bytes(tmp_path, engine):
    (tmp_path / "src").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    odd = os.path.join(os.fsencode(tmp_path / "src"), b"n\xff")
    with open(odd, "wb") as f:
        f.write(b"x")
    h1 = whole_hash(tmp_path)
    os.rename(odd, odd[:-1] + b"\xfe")
    assert whole_hash(tmp_path) != h1
    os.rename(odd[:-1] + b"\xfe", odd)
    assert whole_hash(tmp_path) == h1


def test_the_recipe_is_pinned():
    """Hashes are shared between machines and versions through the registry: the bytes that go into
    the hash may only change together with inputs.RECIPE (and then this value)."""
    s = inputs.Settings("buildah", b"FROM scratch\nCOPY . /x/\n", "final", "linux/amd64", (("A", "1"),),
                        (("base", "0" * 32),), (("busybox:1", "sha256:" + "1" * 64),), ("https://example.com/a.tgz",))
    files = [inputs.InputFile("a.txt", "file", False, "2" * 32), inputs.InputFile("bin/run", "file", True, "3" * 32),
             inputs.InputFile("link", "symlink", False, "4" * 32)]
    assert inputs.RECIPE == "regless-hash/1"
    assert inputs.workspace_hash(s, files) == "656fc1e362b2cdd9c72fd88e23ce4eba"


# ---------------------------------------------------------------- stat memo

class Memo(dict):
    """The memo as the index keeps it: folder -> {file name: (stat key, digest)}."""

    def get(self, folder, default=None):  # the read side of the index's memo
        return super().get(folder, default)


def need_native() -> None:
    if choose.native is None:
        pytest.skip("gcc, python3-dev or libxxhash-dev was not installed when regless was: "
                    "reglessbuild._native is not built (bin/test installs them)")


def c_engine():
    from reglessbuild.hashing.c_engine import CEngine

    need_native()
    return CEngine(choose.native)


@pytest.fixture(params=["c", "python"])
def engine(request):
    """Each engine of the port, chosen for the test: the C one (reglessbuild/csrc) and the Python one."""
    with choose.using(c_engine() if request.param == "c" else choose.python()):
        yield request.param


def open_counter(monkeypatch):
    """A function that says how many files were opened for their content since this call."""
    if choose.engine().name == "c":
        start = choose.native.files_opened()
        return lambda: choose.native.files_opened() - start
    opened = []
    real = python_engine.hash_file
    monkeypatch.setattr(python_engine, "hash_file", lambda p: (opened.append(p), real(p))[1])
    return lambda: len(opened)


def hash_with(root: Path, memo: Memo, monkeypatch) -> tuple[int, int]:
    """(files whose content was read, bytes read) for one hashing of `root` with `memo`."""
    opened = open_counter(monkeypatch)
    df = root / "Dockerfile"
    an = dockerfile.analyze(df, build_args={}, target=None)
    _, records, read = inputs.collect(root, df, an, ignore.load(root, df), memo)
    inputs.merge_records(memo, records)
    return opened(), read


def test_unchanged_tree_is_hashed_without_reading_content(tmp_path, monkeypatch, engine):
    tree(tmp_path, [f"src/f{i}" for i in range(50)])
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    old = time.time() - 10
    for f in (tmp_path / "src").iterdir():
        os.utime(f, (old, old))
    time.sleep(0.01)
    memo = Memo()
    assert hash_with(tmp_path, memo, monkeypatch)[0] == 50
    # the ctime of a just-touched file is recent: memoized only once it is older than the racy window
    monkeypatch.setattr(statmemo, "RACY_SECONDS", 0.0)
    hash_with(tmp_path, memo, monkeypatch)
    assert hash_with(tmp_path, memo, monkeypatch) == (0, 0)


def _rchar() -> int:
    """Bytes this process has read through read(2) and the like, by the kernel's count (all threads)."""
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["rchar"])


def test_the_kernel_counts_no_content_read_for_an_unchanged_tree(tmp_path, monkeypatch, engine):
    """The same as above, counted by the kernel rather than by regless: 5 MB of input, and a second
    hashing reads less than one file's worth (the Dockerfile, /proc itself)."""
    monkeypatch.setattr(statmemo, "RACY_SECONDS", 0.0)
    for i in range(20):
        f = tmp_path / "src" / f"f{i}"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(os.urandom(256 << 10))
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    memo = Memo()
    before = _rchar()
    hash_with(tmp_path, memo, monkeypatch)
    assert _rchar() - before >= 20 * (256 << 10)
    before = _rchar()
    assert hash_with(tmp_path, memo, monkeypatch) == (0, 0)
    assert _rchar() - before < 256 << 10


def test_a_rewrite_within_the_mtime_granularity_is_caught(tmp_path, monkeypatch, engine):
    monkeypatch.setattr(statmemo, "RACY_SECONDS", 0.0)
    tree(tmp_path, ["src/a"])
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    f = tmp_path / "src" / "a"
    st0 = f.stat()
    memo = Memo()
    hash_with(tmp_path, memo, monkeypatch)
    h1 = whole_hash(tmp_path)
    f.write_text("b" * len(f.read_text()))  # same size
    os.utime(f, ns=(st0.st_atime_ns, st0.st_mtime_ns))  # same mtime: only ctime tells
    assert hash_with(tmp_path, memo, monkeypatch)[0] == 1
    assert whole_hash(tmp_path) != h1


def test_a_file_changed_in_the_last_two_seconds_is_never_memoized(tmp_path, monkeypatch, engine):
    tree(tmp_path, ["src/a"])
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    memo = Memo()
    hash_with(tmp_path, memo, monkeypatch)
    assert memo == {} and hash_with(tmp_path, memo, monkeypatch)[0] == 1


def test_a_file_that_several_artifacts_read_is_read_once_per_run(tmp_path, monkeypatch, engine):
    monkeypatch.setattr(statmemo, "RACY_SECONDS", 0.0)
    tree(tmp_path, ["shared/s1", "shared/s2", "a/own", "b/own"])
    opened = open_counter(monkeypatch)
    fresh: dict = {}  # what run.prepare keeps until the run has hashed every artifact
    for name in ("a", "b"):
        df = tmp_path / f"{name}.Dockerfile"
        df.write_text(f"FROM scratch\nCOPY shared/ /shared/\nCOPY {name}/ /{name}/\n")
        an = dockerfile.analyze(df, build_args={}, target=None)
        files, records, _ = inputs.collect(tmp_path, df, an, ignore.load(tmp_path, df),
                                           inputs.LayeredMemo(Memo(), fresh))
        inputs.merge_records(fresh, records)
        assert [f.path for f in files] == [f"{name}/own", "shared/s1", "shared/s2"]
    assert opened() == 4  # a/own, b/own, shared/s1, shared/s2


def test_a_file_gone_while_hashing_is_a_clear_error(tmp_path, monkeypatch, engine):
    tree(tmp_path, [f"src/f{i}" for i in range(20)])
    entries = [e for e in inputs.walk(tmp_path, ignore.load(tmp_path, tmp_path / "Dockerfile")) if e.kind == "file"]
    (tmp_path / "src" / "f13").unlink()
    with pytest.raises(InputError, match="cannot read src/f13 .*No such file"):
        inputs.hash_files(entries, None)


def test_a_folder_that_cannot_be_listed_is_a_clear_error(tmp_path, engine):
    import resource

    tree(tmp_path, ["src/a"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (3, hard))  # no descriptor left to open a folder with
    try:
        with pytest.raises(InputError, match=f"cannot list the folder {tmp_path} of the build context: "
                                             "Too many open files") as caught:
            inputs.walk(tmp_path, ignore.IgnoreRules((), None))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "leave it out with .dockerignore" in caught.value.hint


@pytest.mark.parametrize("junk", ["not a record", ("short",), (None, "d" * 32), ((1, 2, 3, 4), 7), 5])
def test_a_damaged_memo_record_is_a_miss_never_a_digest(tmp_path, monkeypatch, junk, engine):
    tree(tmp_path, ["src/a"])
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    df = tmp_path / "Dockerfile"
    an = dockerfile.analyze(df, build_args={}, target=None)
    want, _, _ = inputs.collect(tmp_path, df, an, ignore.load(tmp_path, df), None)
    memo = Memo({str(tmp_path / "src"): {"a": junk}})
    got, _, read = inputs.collect(tmp_path, df, an, ignore.load(tmp_path, df), memo)
    assert got == want and read == len("src/a")  # the file was read again


def test_regless_version_says_which_loops_hash(monkeypatch, capsys):
    from reglessbuild import cli

    monkeypatch.setattr(choose, "native", None)
    assert cli.main(["version"]) == 0
    assert "hashing: Python loops, slower: the C part is not built (install gcc" in capsys.readouterr().out
    if os.environ.get("REGLESS_REQUIRE_NATIVE") == "1":
        from conftest import REGLESS

        out = subprocess.run([REGLESS, "version"], capture_output=True, text=True, check=True).stdout
        assert "hashing: C part (reglessbuild/_native, built from reglessbuild/csrc)" in out


def test_the_chooser_fails_loudly_where_the_c_part_is_required_but_not_built(monkeypatch):
    """bin/test sets REGLESS_REQUIRE_NATIVE=1: there a missing C part is an error, not a slower run."""
    monkeypatch.setattr(choose, "native", None)
    monkeypatch.setattr(choose, "_chosen", None)
    monkeypatch.setenv("REGLESS_REQUIRE_NATIVE", "1")
    with pytest.raises(choose.NativeMissing, match="REGLESS_REQUIRE_NATIVE=1") as caught:
        choose.engine()
    assert "libxxhash-dev" in (caught.value.hint or "")
    monkeypatch.delenv("REGLESS_REQUIRE_NATIVE")
    assert choose.engine().name == "python"


def test_only_the_chooser_loads_the_c_part():
    """One place chooses the engine: no other module imports reglessbuild._native (no `if _native`)."""
    import re

    import reglessbuild

    root = Path(reglessbuild.__file__).parent
    loads = re.compile(r"^\s*(from \S+ )?import .*\b_native\b|\b_native\s+is\s+(not\s+)?None", re.M)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if loads.search(p.read_text())) == \
        ["hashing/choose.py"]


IGNORES = ["", "*.ign", "d0\n!d0/keep*", "**/x*\n!**/x1", "/d1", "d*/d*\n!d0/d1/a", "?\n*/?",
           # rules with literal tails: the C walk asks only about files ending with one (ignore.tails)
           "*.txt", "**/*1\n!d0/x1", "d0\n**/*0", "**/ä", "d1/*.txt\n!d1/b.txt", "keep\nx10"]
engine_names = st.sampled_from(["a", "b.txt", "x1", "x10", "keep", "ä", "z z", "n\udcff", "d0", "d1", "A", "_"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.dictionaries(st.lists(engine_names, min_size=1, max_size=3).map("/".join),
                            st.tuples(st.sampled_from([0, 1, 100, python_engine.CHUNK, python_engine.CHUNK + 7]), st.booleans(),
                                      st.sampled_from(["file", "file", "file", "symlink"])),
                            min_size=1, max_size=10).filter(
    lambda d: not any(a != b and b.startswith(a + "/") for a in d for b in d)),
       patterns=st.sampled_from(IGNORES), memoized=st.booleans())
def test_the_c_and_python_engines_give_the_same_listing_files_records_and_hash(
        tmp_path_factory, monkeypatch, spec, patterns, memoized):
    """The C engine (reglessbuild/csrc) runs the Python engine's loops (walk with .dockerignore, stat memo,
    read, hash encoding, memo packing): for any tree, with or without memo records, both give the same."""
    c, py = c_engine(), choose.python()
    monkeypatch.setattr(statmemo, "RACY_SECONDS", 0.0)  # just-written files get memo records too
    root = tmp_path_factory.mktemp("engines")
    old = time.time() - 10
    for rel, (size, exe, kind) in spec.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        if kind == "symlink":
            f.symlink_to("../" * rel.count("/") + "target-" + rel.replace("/", "_"))
            continue
        f.write_bytes(bytes(range(256)) * (size // 256) + b"q" * (size % 256))
        f.chmod(0o755 if exe else 0o644)
        os.utime(f, (old, old))
    (root / ".dockerignore").write_text(patterns)
    rules = ignore.load(root, root / "Dockerfile")
    listing = c.walk(root, rules)
    assert listing == py.walk(root, rules)
    entries = [e for e in listing if e.kind != "dir"]
    memo = Memo()
    if memoized:  # records for every other file, from the Python engine
        inputs.merge_records(memo, py.hash(entries[::2], None, None).records)
    hashed, py_hashed = c.hash(entries, memo, None), py.hash(entries, memo, None)
    assert hashed == py_hashed
    files, records = hashed.files, hashed.records
    assert memoized or bool(records) == any(f.kind == "file" for f in files)
    for folder, names in records.items():  # the index's packed records: the same bytes from C and Python
        names = {**names, "junk": ((1, 2, 3), "0" * 32), "bad digest": ((1, 2, 3, 4), "xyz")}
        packed = c.pack_memo(names)
        assert py.pack_memo(names) == packed
        assert statmemo.unpack(packed) == records[folder]
    assert all(type(f) is inputs.InputFile for f in files)
    assert c.encode_files(files) == py.encode_files(files)  # a name that is not UTF-8: its bytes
    settings_ = inputs.Settings("buildah", b"FROM scratch\n", None, None, (), (), (), ())
    with choose.using(c):
        h = inputs.workspace_hash(settings_, files)
    with choose.using(py):
        assert inputs.workspace_hash(settings_, files) == h


def test_the_c_engine_reports_progress_and_stops_on_the_first_unreadable_file(tmp_path, engine):
    tree(tmp_path, [f"src/f{i:04d}" for i in range(3000)])
    entries = [e for e in inputs.walk(tmp_path, ignore.IgnoreRules((), None)) if e.kind == "file"]
    seen: list[tuple[int, int]] = []
    files, _, read = inputs.hash_files(entries, None, progress=lambda n, b: seen.append((n, b)))
    assert len(files) == 3000 and read == sum(len(f"src/f{i:04d}") for i in range(3000))
    assert all(0 <= n <= 3000 and 0 <= b <= read for n, b in seen)
    (tmp_path / "src" / "f0100").unlink()
    (tmp_path / "src" / "f2000").unlink()
    with pytest.raises(InputError, match="cannot read src/f0100 .*No such file") as caught:
        inputs.hash_files(entries, None)
    assert caught.value.hint


@pytest.mark.parametrize("into", ["fifo", "symlink"])
def test_a_file_replaced_while_hashing_is_an_error_never_a_hang(tmp_path, into, engine):
    tree(tmp_path, ["src/a", "src/b"])
    entries = [e for e in inputs.walk(tmp_path, ignore.load(tmp_path, tmp_path / "Dockerfile")) if e.kind == "file"]
    victim = tmp_path / "src" / "b"
    victim.unlink()
    os.mkfifo(victim) if into == "fifo" else victim.symlink_to("a")  # a fifo would block a plain open()
    with pytest.raises(InputError, match="cannot read src/b "):
        inputs.hash_files(entries, None)


def test_the_index_merges_memo_records_by_folder_and_ignores_damaged_ones(tmp_path):
    from reglessbuild.index import Index

    idx = Index.open(tmp_path / "cache")
    rec = ((1, 2, 3, 4), "d" * 32)
    idx.memo_put({"/ctx/src": {"a": rec}})
    idx.memo_put({"/ctx/src": {"b": rec}, "/ctx": {"c": rec}})
    view = idx.memo()
    assert view.get("/ctx/src") == {"a": rec, "b": rec} and view.get("/ctx") == {"c": rec}
    assert view.get("/elsewhere") is None
    view.close()
    for junk in (b"\x01not marshal", b"\x02\xff\xff\xff\xff", b"\x02", pack_memo({"c": rec})[:-1]):
        with idx.env.begin(write=True) as txn:
            txn.put(b"/ctx", junk, db=idx._db("memo"))
        view = idx.memo()
        assert view.get("/ctx") is None
        view.close()
    idx.close()


def test_packed_memo_records_are_read_in_place_and_damaged_ones_are_misses(tmp_path, monkeypatch, engine):
    """The index packs each folder's records (statmemo.pack); the C engine looks names up in those
    bytes. A second run reads nothing; a damaged record makes files be read again, never a wrong digest."""
    from reglessbuild.index import Index

    monkeypatch.setattr(statmemo, "RACY_SECONDS", 0.0)
    ctx = tree(tmp_path / "ctx", [f"src/f{i}" for i in range(30)] + ["src/\u00e4", "src/z z"])
    df = ctx / "Dockerfile"
    df.write_text("FROM scratch\nCOPY src/ /src/\n")
    an = dockerfile.analyze(df, build_args={}, target=None)
    idx = Index.open(tmp_path / "cache")

    def once() -> tuple[list, int]:
        opened = open_counter(monkeypatch)
        with idx.memo() as view:
            files, records, _ = inputs.collect(ctx, df, an, ignore.load(ctx, df), view)
        idx.memo_put(records)
        return files, opened()

    first, n = once()
    assert n == 32
    assert once() == (first, 0)
    key = str(ctx / "src").encode()
    with idx.env.begin() as txn:
        good = txn.get(key, db=idx._db("memo"))
    for junk, reread in ((good[:-2], None), (good[:40], 32), (b"\x02\xff\xff\xff\xff", 32), (b"\x02", 32)):
        with idx.env.begin(write=True) as txn:
            txn.put(key, junk, db=idx._db("memo"))
        files, n = once()
        assert files == first and (n == reread if reread else n >= 1)
    idx.close()


# ---------------------------------------------------------------- base images (real registry)

def test_a_moved_base_tag_rebuilds_and_a_missing_base_is_an_error(demo, registry, tmp_path):
    import harness

    base = harness.make_base_image(registry.address, f"{demo.repo.split('/', 1)[1]}/base:moving")
    demo.env["REGLESS_BASE_IMAGE"] = base.split("@")[0]  # by tag: regless resolves it
    first = demo.build().outcomes()
    assert first["tools"] == "built"
    assert demo.build().outcomes()["tools"] == "cached"
    df = tmp_path / "rebase"
    df.mkdir()
    (df / "Dockerfile").write_text(f"FROM {base.split('@')[0]}\nENV MOVED=1\n")
    subprocess.run(["buildah", "--storage-driver", "vfs", "build", "--isolation", "chroot", "-q", "--tls-verify=false",
                    "-t", base.split("@")[0], str(df)], check=True, capture_output=True)
    subprocess.run(["buildah", "--storage-driver", "vfs", "push", "-q", "--tls-verify=false", base.split("@")[0],
                    f"docker://{base.split('@')[0]}"], check=True)
    moved = demo.build().outcomes()
    assert moved == {"web": "cached", "tools": "built", "app": "built"}  # the tag moved: tools and its dependent
    demo.env["REGLESS_BASE_IMAGE"] = f"{registry.address}/no/such-base:1"
    res = demo.run("build")
    assert res.returncode == 2 and "base image" in res.stderr and "Dockerfile:2" in res.stderr


# ---------------------------------------------------------------- the real builder's view

def _image_files(ref_dir: Path, ctx: Path) -> set[str]:
    """The files buildah puts into an image with `COPY . /ctx/`."""
    st_ = ["--storage-driver", "vfs"]
    tag = f"localhost/regless-ignore-check:{ctx.name}"
    subprocess.run(["buildah", *st_, "build", "--isolation", "chroot", "-q", "-t", tag, str(ctx)], check=True,
                   capture_output=True)
    cid = subprocess.run(["buildah", *st_, "from", tag], check=True, capture_output=True, text=True).stdout.strip()
    try:
        mnt = Path(subprocess.run(["buildah", *st_, "mount", cid], check=True, capture_output=True,
                                  text=True).stdout.strip())
        out = set()
        for dirpath, _dirs, files in os.walk(mnt / "ctx"):
            for f in files:
                out.add(os.path.relpath(os.path.join(dirpath, f), mnt / "ctx"))
        return out
    finally:
        subprocess.run(["buildah", *st_, "rm", cid], capture_output=True)
        subprocess.run(["buildah", *st_, "rmi", tag], capture_output=True)


PATTERNS = ["*.log", "!keep.log", "build", "!build/keep", "**/*.tmp", "docs/*.md", "!docs/README.md", "a?c",
            "/root-only.txt", "nested/**/deep", "x[0-9]"]


@pytest.mark.parametrize("seed", range(5))
def test_regless_lists_what_buildah_copies(tmp_path, seed):
    if not shutil.which("buildah"):
        pytest.skip("buildah not on PATH")
    rng = random.Random(seed)
    names = ["keep.log", "a.log", "abc", "adc", "x1", "xy", "root-only.txt", "README.md", "notes.md", "f.tmp",
             "f.txt", "Dockerfile"]
    dirs = ["", "build", "build/keep", "docs", "nested/a/deep", "nested/b", "src", "src/sub"]
    ctx = tmp_path / f"ctx{seed}"
    for d in dirs:
        for n in rng.sample(names, 5):
            p = ctx / d / n
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{d}/{n}")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    (ctx / ".dockerignore").write_text("\n".join(rng.sample(PATTERNS, 6)) + "\n")
    ours = set(files_of(ctx, (ctx / "Dockerfile").read_text()))
    assert ours == _image_files(tmp_path, ctx), (ctx / ".dockerignore").read_text()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_hashing_in_the_middle_of_a_huge_file(tmp_path, sig, code):
    """Hashing runs on threads with the GIL released: a signal still ends
    `regless hash` at once, not after the file. A sparse 1 TB file takes minutes to read."""
    from conftest import REGLESS

    (tmp_path / "regless.yaml").write_text(
        "apiVersion: regless/v1\ndefaultRepo: 127.0.0.1:9/x\nartifacts:\n  - image: big\n    context: big\n")
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "Dockerfile").write_text("FROM scratch\nCOPY . /x/\n")
    with open(tmp_path / "big" / "huge", "wb") as f:
        f.truncate(1 << 40)
    p = subprocess.Popen([REGLESS, "hash", "big", "--cache-dir", str(tmp_path / "cache")], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:  # until it is well into the file
            io = dict(line.split(": ") for line in Path(f"/proc/{p.pid}/io").read_text().splitlines())
            if int(io["rchar"]) > 256 << 20:
                break
            time.sleep(0.05)
        assert p.poll() is None, p.communicate()
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)  # reading the rest would take minutes
    finally:
        p.kill()
    assert p.returncode == code and "cancelled" in err, err
