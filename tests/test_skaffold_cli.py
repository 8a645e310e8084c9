"""skaffold.yaml projects through the command line, with a real registry, buildah and skopeo.

The hand-off back to Skaffold is checked with Skaffold's own matching rules for
`skaffold deploy --build-artifacts FILE` (see `skaffold_deploy_tags` below).
"""

from __future__ import annotations

import json
from pathlib import Path

import harness
from conftest import Project
from reglessbuild import refs


def skaffold_deploy_tags(images_in_config: list[str], build_output: dict, default_repo: str | None) -> dict[str, str]:
    """The tag `skaffold deploy --build-artifacts` deploys for each artifact of its skaffold.yaml.

    As Skaffold does it (cmd/skaffold/app/cmd/util.go, getBuildArtifactsAndSetTags): one entry per artifact
    of the config, `{ImageName: artifact.ImageName, Tag: ""}` (mergeBuildArtifacts); the file's `builds`
    replace the entries whose ImageName equals theirs exactly, keeping the config's order
    (pkg/skaffold/build/util.go, MergeWithPreviousBuilds); an entry left without a tag fails the deploy
    ("no tag provided for image [NAME]", validateArtifactTags); then the default repo is applied to each tag
    (applyDefaultRepoToArtifacts -> SubstituteDefaultRepoIntoImage, refs.skaffold_default_repo here).
    """
    merged = [{"imageName": name, "tag": ""} for name in images_in_config]
    by_name = {b["imageName"]: b for b in build_output["builds"]}
    merged = [by_name.get(m["imageName"], m) for m in merged]
    for m in merged:
        assert m["tag"], f"no tag provided for image [{m['imageName']}]"
    out = {}
    for m in merged:
        name, _, digest = m["tag"].partition("@")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
        repo = name[: len(name) - len(tag) - 1] if tag else name
        out[m["imageName"]] = refs.skaffold_default_repo(default_repo, repo) + (f":{tag}" if tag else "") + \
            (f"@{digest}" if digest else "")
    return out


def _deployed_digests_match(proj: Project, deployed: dict[str, str], res_json: dict) -> None:
    digests = {a["name"]: a["digest"] for a in res_json["artifacts"] if a["digest"]}
    for name, tag in deployed.items():
        assert tag.endswith("@" + digests[name])
        assert proj.digest(tag.split("@")[0]) == digests[name], f"{tag} is not served with the built digest"


def test_file_output_is_what_skaffold_deploy_reads_for_a_skaffold_yaml_with_default_repo(make_project, tmp_path):
    proj = make_project("skaffold")
    proj.env["USER_NAME"] = "ann"
    f = str(proj.path / "requires" / "skaffold.yaml")
    out = tmp_path / "builds.json"
    res = proj.build("-f", f, "--file-output", str(out))
    builds = json.loads(out.read_text())
    assert [b["imageName"] for b in builds["builds"]] == ["base", "leeroy-app"]  # as written, config order
    # tagPolicy sha256: Skaffold tags `latest`; regless retags IMAGE:HASH so, and reports that tag
    for b in builds["builds"]:
        assert b["tag"].startswith(f"{proj.repo}/{b['imageName']}:latest@sha256:")
    deployed = skaffold_deploy_tags(["base", "leeroy-app"], builds, proj.repo)
    _deployed_digests_match(proj, deployed, res.json())
    # a second run: cached, same file
    again = proj.build("-f", f, "--file-output", str(out))
    assert again.outcomes() == {"base": "cached", "leeroy-app": "cached"}
    assert json.loads(out.read_text()) == builds
    # renamed: retagged, and still in the file under the name as written now
    cfg = Path(f)
    cfg.write_text(cfg.read_text().replace("image: leeroy-app", "image: leeroy-web"))
    renamed = proj.build("-f", f, "--file-output", str(out))
    assert renamed.outcomes() == {"base": "cached", "leeroy-web": "retagged"}
    moved = json.loads(out.read_text())
    assert [b["imageName"] for b in moved["builds"]] == ["base", "leeroy-web"]
    _deployed_digests_match(proj, skaffold_deploy_tags(["base", "leeroy-web"], moved, proj.repo), renamed.json())


def test_file_output_for_a_skaffold_yaml_without_default_repo(make_project, tmp_path):
    proj = make_project("skaffold")
    cfg = proj.path / "microservices" / "skaffold.yaml"
    cfg.write_text(cfg.read_text().replace("image: leeroy-", f"image: {proj.repo}/leeroy-"))
    out = tmp_path / "builds.json"
    refused = proj.run("build", "-f", str(cfg), default_repo=False)
    # skopeo's check is refused (an error on stderr); crane's passes (it falls back to plain http on
    # loopback) and buildah's push is refused (the artifact's failure, on stdout): skaffold.yaml's words
    said = refused.stdout + refused.stderr
    assert refused.returncode == 3 and "build.insecureRegistries: [" in said
    assert "registry.insecure" not in said
    res = proj.run("build", "-f", str(cfg), "--output", "json", "--file-output", str(out), "--insecure-registry",
                   proj.registry, default_repo=False)
    assert res.returncode == 0, res.stderr
    builds = json.loads(out.read_text())
    names = [f"{proj.repo}/leeroy-web", f"{proj.repo}/leeroy-app"]
    assert [b["imageName"] for b in builds["builds"]] == names
    deployed = skaffold_deploy_tags(names, builds, None)
    _deployed_digests_match(proj, deployed, res.json())


def test_file_output_for_regless_yaml_names_images_as_written(demo, tmp_path):
    out = tmp_path / "builds.json"
    res = demo.build("--file-output", str(out))
    builds = json.loads(out.read_text())
    assert [b["imageName"] for b in builds["builds"]] == ["web", "tools", "app"]
    deployed = skaffold_deploy_tags(["web", "tools", "app"], builds, demo.repo)
    _deployed_digests_match(demo, deployed, res.json())
    hashes = {a["name"]: a["hash"] for a in res.json()["artifacts"]}
    assert all(deployed[n].startswith(f"{demo.repo}/{n}:{hashes[n]}@") for n in hashes)


def test_file_output_in_a_missing_folder_is_refused_before_building(demo, tmp_path):
    res = demo.run("build", "--file-output", str(tmp_path / "nope" / "b.json"))
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    res = demo.run("build", "--file-output", str(tmp_path))
    assert res.returncode == 2 and "is a folder" in res.stderr and "Traceback" not in res.stderr
    assert demo.builds_started() == 0


def test_default_repo_from_skaffold_env_rewrites_names_with_a_registry(make_project, tmp_path):
    proj = make_project("skaffold")
    cfg = proj.path / "microservices" / "skaffold.yaml"
    cfg.write_text(cfg.read_text().replace("image: leeroy-web", "image: gcr.io/k8s-skaffold/leeroy-web"))
    proj.env["SKAFFOLD_DEFAULT_REPO"] = proj.repo
    out = tmp_path / "b.json"
    res = proj.run("build", "-f", str(cfg), "--output", "json", "--file-output", str(out), "--insecure-registry",
                   "127.0.0.1", default_repo=False)
    assert res.returncode == 0, res.stderr
    images = {a["name"]: a["image"] for a in res.json()["artifacts"]}
    # a registry that is not gcr.io/AR: escaped and appended (Skaffold's "Image Repository Handling")
    assert images == {"gcr.io/k8s-skaffold/leeroy-web": f"{proj.repo}/gcr_io_k8s-skaffold_leeroy-web",
                      "leeroy-app": f"{proj.repo}/leeroy-app"}
    builds = json.loads(out.read_text())
    deployed = skaffold_deploy_tags(["gcr.io/k8s-skaffold/leeroy-web", "leeroy-app"], builds, proj.repo)
    _deployed_digests_match(proj, deployed, res.json())


def test_unsupported_artifact_is_refused_unless_skipped_on_purpose(make_project, tmp_path):
    proj = make_project("skaffold")
    f = str(proj.path / "kaniko" / "skaffold.yaml")
    refused = proj.run("build", "-f", f)
    assert refused.returncode == 2
    assert "skaffold.yaml:13: build.artifacts[1] (jib-thing) is a jib artifact" in refused.stderr
    assert "--skip-unsupported" in refused.stderr and proj.builds_started() == 0
    text = proj.run("build", "-f", f, "--skip-unsupported", "--insecure-registry", "127.0.0.1")
    assert text.returncode == 0, text.stderr
    assert any(ln.split()[:2] == ["skipped", "jib-thing"] for ln in text.stdout.splitlines()), text.stdout
    assert "1 built, 1 skipped" in text.stdout.splitlines()[-1] and "2 artifacts" in text.stdout
    js = proj.run("build", "-f", f, "--skip-unsupported", "--output", "json", "--file-output", str(tmp_path / "o"),
                  "--insecure-registry", "127.0.0.1")
    doc = js.json()
    assert {a["name"]: a["outcome"] for a in doc["artifacts"]} == {"skaffold-example": "cached",
                                                                   "jib-thing": "skipped"}
    assert any("jib-thing" in w for w in doc["warnings"])
    jib = next(a for a in doc["artifacts"] if a["name"] == "jib-thing")
    assert jib["reason"] == {"code": "unsupported", "builder": "jib",
                             "message": "a jib artifact: regless cannot build it (--skip-unsupported)"}
    assert jib["error"] is None  # left out on purpose: no failure
    assert [b["imageName"] for b in json.loads((tmp_path / "o").read_text())["builds"]] == ["skaffold-example"]
    plan = proj.run("plan", "-f", f, "--skip-unsupported", "--output", "json", "--insecure-registry", "127.0.0.1")
    assert {a["name"]: a["outcome"] for a in plan.json()["artifacts"]} == {"skaffold-example": "cached",
                                                                          "jib-thing": "skipped"}


def test_requires_without_alias_builds_in_order_and_hashes_the_dependency(make_project):
    proj = make_project("skaffold")
    cfg = proj.path / "requires" / "skaffold.yaml"
    cfg.write_text(cfg.read_text().replace("          alias: BASE\n", "").replace(
        'GREETING: "hello {{.USER_NAME}}"', 'GREETING: \'{{default "you" .NOPE_UNSET}}\'\n          BASE: null'))
    proj.env["BASE"] = proj.env["REGLESS_BASE_IMAGE"]
    proj.env.pop("NOPE_UNSET", None)
    res = proj.build("-f", str(cfg))
    arts = {a["name"]: a for a in res.json()["artifacts"]}
    base_ref = arts["base"]["reference"]
    app_build = next(c for c in harness.calls(proj.builds_log) if "/leeroy-app:" in c and " build " in c)
    assert "GREETING=you" in app_build and f"BASE={proj.env['BASE']}" in app_build  # null: from the environment
    assert base_ref not in app_build  # no alias: no build arg with base's reference
    (proj.path / "requires" / "base" / "base.txt").write_text("changed\n")
    again = proj.build("-f", str(cfg))
    assert again.outcomes() == {"base": "built", "leeroy-app": "built"}  # its hash covers base's


def test_builds_skaffold_requires_end_to_end(make_project):
    proj = make_project("skaffold")
    proj.env["USER_NAME"] = "ann"
    f = str(proj.path / "requires" / "skaffold.yaml")
    res = proj.run("build", "-f", f, "--output", "json")
    assert res.returncode == 0, res.stderr
    assert res.outcomes() == {"base": "built", "leeroy-app": "built"}
    assert "warning" not in res.stderr  # cacheFrom, sync, useBuildkit: accepted, no effect on the image
    arts = {a["name"]: a for a in res.json()["artifacts"]}
    app_build = next(c for c in harness.calls(proj.builds_log) if "/leeroy-app:" in c and " build " in c)
    assert "GREETING=hello ann" in app_build and "FLAG=on" in app_build and "--target release" in app_build
    assert f"BASE={arts['base']['reference']}" in app_build and "Dockerfile.prod" in app_build
    assert proj.digest(f"{proj.repo}/base:latest") == arts["base"]["digest"]  # tagPolicy sha256: a retag
    again = proj.run("build", "-f", f, "--output", "json")
    assert again.outcomes() == {"base": "cached", "leeroy-app": "cached"}


def test_skaffold_yaml_found_without_f(make_project):
    proj = make_project("skaffold")
    res = proj.run("plan", "--output", "json", "--insecure-registry", "127.0.0.1", cwd=proj.path / "microservices")
    assert res.returncode == 0, res.stderr
    assert [a["name"] for a in res.json()["artifacts"]] == ["leeroy-web", "leeroy-app"]
    assert "warning" not in res.stderr


def test_profile_and_patch_change_what_is_built(make_project, tmp_path: Path):
    proj = make_project("skaffold")
    cfg = proj.path / "microservices" / "skaffold.yaml"
    cfg.write_text(cfg.read_text() + """profiles:
  - name: web-only
    build:
      artifacts:
        - image: leeroy-web
          context: ./leeroy-web/
  - name: prod
    activation:
      - env: STAGE=prod
    patches:
      - op: add
        path: /build/artifacts/0/docker
        value: {buildArgs: {MODE: prod}}
""")
    cfg.write_text(cfg.read_text().replace("build:\n", "build:\n  insecureRegistries: [127.0.0.1]\n", 1))
    only = proj.run("plan", "-f", str(cfg), "-p", "web-only", "--output", "json")
    assert only.returncode == 0, only.stderr
    assert [a["name"] for a in only.json()["artifacts"]] == ["leeroy-web"]
    plain = proj.run("hash", "leeroy-web", "-f", str(cfg))
    proj.env["STAGE"] = "prod"
    patched = proj.run("hash", "leeroy-web", "-f", str(cfg))
    off = proj.run("hash", "leeroy-web", "-f", str(cfg), "--profile=-prod")
    assert plain.returncode == patched.returncode == off.returncode == 0, patched.stderr
    assert plain.stdout != patched.stdout  # the patched build arg is in the hash
    assert off.stdout == plain.stdout  # --profile=-prod turned the auto-activated profile off


def test_input_digest_tag_is_skaffolds_formula_and_a_retag(make_project, tmp_path):
    import hashlib

    proj = make_project("skaffold")
    root = proj.path / "digest"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /\n")
    (root / "a.txt").write_text("a\n")
    (root / "unused.txt").write_text("not copied\n")
    (root / "skaffold.yaml").write_text("apiVersion: skaffold/v4beta13\nkind: Config\nbuild:\n"
                                        "  insecureRegistries: [127.0.0.1]\n  tagPolicy: {inputDigest: {}}\n"
                                        "  artifacts:\n  - image: app\n")
    out = tmp_path / "b.json"
    res = proj.build("-f", str(root / "skaffold.yaml"), "--file-output", str(out))

    # Skaffold's input_digest.go, by hand: the dependencies (absolute), then the Dockerfile as written, sorted;
    # md5(path relative to the context + content) each; sha256 of the JSON list and a newline
    def md5(rel: str, body: bytes) -> str:
        return hashlib.md5(rel.encode() + body).hexdigest()

    entries = sorted([str(root / "Dockerfile"), str(root / "a.txt"), "Dockerfile"])
    bodies = {str(root / "Dockerfile"): ("Dockerfile", (root / "Dockerfile").read_bytes()),
              str(root / "a.txt"): ("a.txt", b"a\n"), "Dockerfile": ("Dockerfile", (root / "Dockerfile").read_bytes())}
    hashes = [md5(*bodies[e]) for e in entries]
    want = hashlib.sha256(("[" + ",".join(f'"{h}"' for h in hashes) + "]\n").encode()).hexdigest()
    build = json.loads(out.read_text())["builds"][0]
    digest = res.json()["artifacts"][0]["digest"]
    assert build == {"imageName": "app", "tag": f"{proj.repo}/app:{want}@{digest}"}
    assert proj.digest(f"{proj.repo}/app:{want}") == digest
    (root / "unused.txt").write_text("changed, still not copied\n")
    again = proj.build("-f", str(root / "skaffold.yaml"), "--file-output", str(out))
    assert again.outcomes() == {"app": "cached"} and json.loads(out.read_text())["builds"][0] == build


def test_file_output_for_regless_yaml_without_default_repo(demo, tmp_path):
    cfg = demo.path / "regless.yaml"
    text = cfg.read_text()
    for name in ("web", "tools", "app"):
        text = text.replace(f"image: {name} ", f"image: {demo.repo}/{name} ")
    cfg.write_text(text.replace("{image: tools,", f"{{image: {demo.repo}/tools,"))
    out = tmp_path / "builds.json"
    res = demo.run("build", "--output", "json", "--file-output", str(out), default_repo=False)
    assert res.returncode == 0, res.stderr
    names = [f"{demo.repo}/{n}" for n in ("web", "tools", "app")]
    builds = json.loads(out.read_text())
    assert [b["imageName"] for b in builds["builds"]] == names
    _deployed_digests_match(demo, skaffold_deploy_tags(names, builds, None), res.json())


def test_multi_config_project_builds_each_config_from_its_own_folder(make_project, tmp_path):
    proj = make_project("skaffold")
    proj.env["RELEASE"] = "r1"
    f = str(proj.path / "multi-config" / "skaffold.yaml")
    out = tmp_path / "b.json"
    res = proj.build("-f", f, "--file-output", str(out))
    assert res.outcomes() == {"base": "built", "app": "built"}
    builds = json.loads(out.read_text())
    deployed = skaffold_deploy_tags(["base", "app"], builds, proj.repo)
    assert deployed["base"].startswith(f"{proj.repo}/base:")  # base has no tagPolicy: the hash
    assert deployed["app"].startswith(f"{proj.repo}/app:r1@")  # app's envTemplate tag
    _deployed_digests_match(proj, deployed, res.json())
