"""`deps` lists every input of the hash and works offline; `cache` commands need only what they use."""

from __future__ import annotations

import time


def _from_tag(demo, image: str) -> None:
    (demo.path / "tools" / "Dockerfile").write_text(
        f"FROM {image}\nCOPY greet.sh /usr/local/bin/greet\nRUN /usr/local/bin/greet > /greeting.txt\n")


def test_deps_lists_every_input_of_the_hash(demo):
    (demo.path / "tools" / ".dockerignore").write_text("*.md\n")
    base = f"{demo.registry}/base/busybox:stable"
    _from_tag(demo, base)
    doc = demo.run("deps", "tools", "--output", "json").json()
    assert doc["hash"] == demo.run("hash", "tools").stdout.strip()
    assert doc["dockerfile"]["path"] == "Dockerfile" and len(doc["dockerfile"]["hash"]) == 32
    assert doc["dockerignore"] == ".dockerignore"
    assert doc["buildArgs"] == {"BASE": demo.env["REGLESS_BASE_IMAGE"]}
    assert doc["bases"] == [{"image": base, "digest": demo.env["REGLESS_BASE_IMAGE"].split("@")[1]}]
    assert [f["path"] for f in doc["files"]] == ["greet.sh"]
    app = demo.run("deps", "app", "--output", "json").json()
    assert app["requires"] == [{"artifact": "tools", "alias": "TOOLS_IMAGE", "hash": doc["hash"]}]
    text = demo.run("deps", "tools").stdout.splitlines()
    assert text[0].startswith("dockerfile    Dockerfile  ") and f"base          {base}  sha256:" in "\n".join(text)
    assert text[-1].endswith(" greet.sh") and "build arg     BASE=" in "\n".join(text)


def test_deps_offline_lists_the_files_and_leaves_bases_unresolved(demo):
    base = f"{demo.registry}/base/busybox:stable"
    _from_tag(demo, base)
    online = demo.run("deps", "tools", "--output", "json").json()
    offline = demo.run("deps", "tools", "--offline", "--output", "json").json()
    assert offline["bases"] == [{"image": base, "digest": "unresolved"}] and offline["hash"] is None
    assert offline["files"] == online["files"] and offline["dockerfile"] == online["dockerfile"]
    # a registry that cannot be reached: the same, with a warning that says why, and no exit 3
    _from_tag(demo, "127.0.0.1:1/nowhere/base:1")
    t0 = time.monotonic()
    res = demo.run("deps", "tools", "--output", "json")
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - t0 < 30
    doc = res.json()
    assert doc["bases"] == [{"image": "127.0.0.1:1/nowhere/base:1", "digest": "unresolved"}]
    assert [f["path"] for f in doc["files"]] == ["greet.sh"]
    assert any("unresolved" in w and "127.0.0.1:1" in w for w in doc["warnings"]), doc["warnings"]
    assert "warning: base image digests are unresolved" in res.stderr


def test_cache_verify_and_add_need_no_build_arg_variable(demo):
    arts = {a["name"]: a for a in demo.build().json()["artifacts"]}
    env = {k: v for k, v in demo.env.items() if k != "REGLESS_BASE_IMAGE"}  # regless.yaml's ${REGLESS_BASE_IMAGE}
    verify = demo.run("cache", "verify", env=env)
    assert verify.returncode == 0 and "3 alive, 0 dead" in verify.stdout, verify.stderr
    demo.run("cache", "rm", arts["web"]["hash"], env=env)
    add = demo.run("cache", "add", f"{arts['web']['image']}:{arts['web']['hash']}", env=env)
    assert add.returncode == 0 and arts["web"]["digest"] in add.stdout, add.stderr
    assert demo.run("build", env=env).returncode == 2  # build does need it, and says so
