"""`.dockerignore` semantics: moby's own patternmatcher test vectors (patternmatcher_test.go,
restated here as data), ignore-file reading, and the Dockerfile-specific ignore file."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reglessbuild.hashing import ignore

# TestMatches: (pattern, path, matches) under MatchesOrParentMatches ("exact" and "inexact" both match)
SINGLE = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True), ("**", "/", True),
    ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True), ("**", "dir/file/", True),
    ("**/", "dir/file/", True), ("**/**", "dir/file", True), ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True), ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True), ("**/dir", "dir", True), ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True), ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True),
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True), ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False), ("abc/**", "abc/def", True), ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False), ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\\\", "a\\", True), ("a\\*b", "a*b", True),
]

MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    # the small tests at the top of patternmatcher_test.go
    (["*"], "fileutils.go", True), (["*.go"], "fileutils.go", True),
    (["!fileutils.go", "*.go"], "fileutils.go", True), (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False), (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False), (["*.go"], ".", False),
]

# TestMatch: Go's filepath.Match vectors, as moby runs them through Matches (None: ErrBadPattern)
GO_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "abc", True),
    ("a*", "ab/c", True), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True), ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False), ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False), ("ab[c]", "abc", True), ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True), ("a\\*b", "ab", False), ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False), ("[a-ζ]*", "α", True), ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False), ("a*b", "a/b", False), ("[\\]a]", "]", True), ("[\\-]", "-", True),
    ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False), ("[\\-x]", "x", True),
    ("[\\-x]", "-", True), ("[\\-x]", "a", False), ("[]a]", "]", None), ("[-]", "-", None), ("[x-]", "x", None),
    ("[x-]", "-", None), ("[x-]", "z", None), ("[-x]", "x", None), ("[-x]", "-", None), ("[-x]", "a", None),
    ("\\", "a", None), ("[a-b-c]", "a", None), ("[", "a", None), ("[^", "a", None), ("[^bc", "a", None),
    ("a[", "a", None), ("a[", "ab", None), ("*x", "xxx", True),
]


def _matches(patterns: list[str], path: str) -> bool:
    rules = ignore.IgnoreRules(tuple(patterns), None)
    m = rules.matcher()
    return bool(m and m.matches(path))


@pytest.mark.parametrize("pattern,path,want", SINGLE)
def test_moby_single_pattern_vectors(pattern, path, want):
    assert _matches([pattern], path) is want


@pytest.mark.parametrize("patterns,path,want", MULTI)
def test_moby_multi_pattern_vectors(patterns, path, want):
    assert _matches(patterns, path) is want


@pytest.mark.parametrize("pattern,path,want", GO_MATCH)
def test_go_filepath_match_vectors(pattern, path, want):
    if want is None:
        with pytest.raises(ValueError, match="syntax error in pattern|Invalid ignore pattern"):
            _matches([pattern], path)
    else:
        assert _matches([pattern], path) is want


def test_lone_exclamation_is_an_error():
    with pytest.raises(ValueError, match="illegal exclusion pattern"):
        _matches(["!"], "x")


def test_read_patterns_like_moby():
    text = "\ufeff# comment\n  *.log  \n\n #not a comment\n!keep.log\n./build/\n/abs\n"
    assert ignore.read_patterns(text) == ["*.log", "#not a comment", "!keep.log", "./build/", "/abs"]
    m = ignore.IgnoreRules(tuple(ignore.read_patterns(text)), None).matcher()
    assert m.matches("a.log") and not m.matches("keep.log") and m.matches("build/x") and m.matches("abs")


def test_dockerfile_specific_ignore_file_wins(tmp_path):
    (tmp_path / ".dockerignore").write_text("*.md\n")
    df = tmp_path / "sub" / "Dockerfile.prod"
    df.parent.mkdir()
    df.write_text("FROM scratch\n")
    assert ignore.load(tmp_path, df).patterns == ("*.md",)
    (tmp_path / "sub" / "Dockerfile.prod.dockerignore").write_text("*.txt\n")
    rules = ignore.load(tmp_path, df)
    assert rules.patterns == ("*.txt",) and rules.source.endswith("Dockerfile.prod.dockerignore")


def test_bad_pattern_names_the_file(tmp_path):
    (tmp_path / ".dockerignore").write_text("a[\n")
    from reglessbuild.errors import DockerfileError

    with pytest.raises(DockerfileError, match=r"\.dockerignore: bad pattern"):
        ignore.load(tmp_path, tmp_path / "Dockerfile")


def _walk_verdict(patterns: list[str], path: str) -> bool:
    """Whether a walk leaves `path` out, asking ignore.Skipper about each parent folder first, as the
    walks do (a folder left out without a look below ends the walk there)."""
    skip = ignore.skipper(ignore.IgnoreRules(tuple(patterns), None))
    assert skip is not None
    parts = path.split("/")
    for depth in range(1, len(parts)):
        if skip("/".join(parts[:depth]), True) is ignore.Verdict.LEAVE_OUT:
            return True
    return skip(path, False) is not ignore.Verdict.KEEP


WALKABLE = [(p if isinstance(p, list) else [p], path, want) for p, path, want in SINGLE + MULTI
            if path not in ("", ".") and not path.startswith("/") and not path.endswith("/") and "//" not in path]


@pytest.mark.parametrize("patterns,path,want", WALKABLE)
def test_the_walks_folder_by_folder_verdicts_agree_with_moby_vectors(patterns, path, want):
    """The walks keep each folder's per-pattern results instead of asking matches() about every parent
    again (BuildKit's MatchesUsingParentResults): on moby's vectors they leave out what matches() does."""
    assert len(WALKABLE) > 40
    assert _walk_verdict(patterns, path) is want


_ATOMS = ["a", "b", "*", "?", "**", "[ab]", "[^a]", "a*", "*b", "?b", "\\*", ".", "x.y", "(a)"]


@settings(max_examples=1000, deadline=None)
@example(patterns=[(False, ["*b"])], path=["a", "b"])  # a wildcard never crosses a /
@example(patterns=[(False, ["a*", "a"])], path=["a", "b", "a"])
@example(patterns=[(False, ["**", "b"]), (True, ["a", "b"])], path=["a", "b"])
@example(patterns=[(False, ["[^a]"])], path=["b", "a"])
@given(patterns=st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(_ATOMS), min_size=1, max_size=3)),
                         min_size=1, max_size=4),
       path=st.lists(st.sampled_from(["a", "b", "ab", "ba", "x.y", "*", "(a)", "c"]), min_size=1, max_size=3))
def test_the_walks_own_pattern_translation_agrees_with_the_library(patterns, path):
    """hashing/globs.py translates each ignore pattern itself (the library's per-pattern matchers are
    private): for any patterns and path, the walk's verdicts leave out exactly what the library's
    public PatternMatcher.matches() does."""
    lines = [("!" if neg else "") + "/".join(parts) for neg, parts in patterns]
    if not any(not line.startswith("!") for line in lines):
        lines.insert(0, "a")
    rel = "/".join(path)
    assert _walk_verdict(lines, rel) is ignore.IgnoreRules(tuple(lines), None).matcher().matches(rel), lines


@pytest.mark.parametrize("rules,want", [
    (["**/*.tmp"], (b".tmp",)), (["x1"], (b"x1",)), (["**/x"], (b"x",)), (["a/b.log", "*.tmp"], (b"a/b.log", b".tmp")),
    (["*[ab]c"], (b"c",)), (["a\\*b"], (b"b",)), (["*.tmp", "**/*.tmp"], (b".tmp",)), (["ä*ö"], ("ö".encode(),)),
    (["a/**"], None), (["*"], None), (["**/x*"], None), (["x?"], None), (["a[bc]"], None), (["foo\\"], None),
])
def test_the_tails_a_file_must_end_with_for_a_rule_to_match_it(rules, want):
    """The C walk asks about a file in a folder nothing matched only where its path ends with one of the
    rules' literal tails; a rule ending in a wildcard has none, and then every entry is asked."""
    assert ignore.tails(rules) == want


@settings(max_examples=1000, deadline=None)
@given(patterns=st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(_ATOMS), min_size=1, max_size=3)),
                         min_size=1, max_size=4),
       path=st.lists(st.sampled_from(["a", "b", "ab", "ba", "x.y", "*", "(a)", "c"]), min_size=1, max_size=3))
def test_a_file_that_ends_with_no_tail_in_a_plain_folder_is_kept(patterns, path):
    """What the C walk skips asking is what the Skipper would keep: a file whose folders are plain (no
    pattern matched them) and whose path ends with none of the tails."""
    lines = [("!" if neg else "") + "/".join(parts) for neg, parts in patterns]
    if not any(not line.startswith("!") for line in lines):
        lines.insert(0, "a")
    skip = ignore.skipper(ignore.IgnoreRules(tuple(lines), None))
    assert skip is not None
    rel = "/".join(path)
    parts = rel.split("/")
    plain = True
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        plain = plain and skip(folder, True) is ignore.Verdict.KEEP and skip.plain(folder)
    verdict = skip(rel, False)
    if skip.tails is not None and plain and not any(rel.encode().endswith(t) for t in skip.tails):
        assert verdict is ignore.Verdict.KEEP, (lines, rel)
