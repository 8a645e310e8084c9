"""skaffold.yaml -> Project, in process: strictness, Skaffold's meanings, and messages in its words."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reglessbuild import config, refs
from reglessbuild.errors import ConfigError, InputError
from reglessbuild.skaffold import templates

HEAD = "apiVersion: skaffold/v4beta13\nkind: Config\n"


def write(folder: Path, text: str, *, name: str = "skaffold.yaml", contexts: tuple[str, ...] = (".",)) -> Path:
    for c in contexts:
        (folder / c).mkdir(parents=True, exist_ok=True)
        (folder / c / "Dockerfile").write_text("FROM scratch\nARG MSG\n")
    path = folder / name
    path.write_text(HEAD + text)
    return path


def load(path: Path, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("env", {})
    return config.load(path, **kw)


def error(path: Path, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as exc:
        load(path, **kw)
    return str(exc.value)


# ---------------------------------------------------------------- strict keys


@pytest.mark.parametrize("typo,line,suggestion", [
    ("    contxt: .\n", 6, "context"),
    ("    dockr: {}\n", 6, "docker"),
    ("    docker:\n      buildArg: {MSG: hi}\n", 7, "buildArgs"),
])
def test_unknown_key_is_refused_with_its_line_and_the_closest_known_key(tmp_path, typo, line, suggestion):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: app\n" + typo)
    msg = error(path)
    assert f"skaffold.yaml:{line}:" in msg and f"did you mean `{suggestion}`?" in msg


def test_unknown_key_in_regless_yaml_gets_did_you_mean(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "regless.yaml").write_text("artifacts:\n  - image: app\n    buildArg: {A: b}\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path / "regless.yaml", env={})
    assert "regless.yaml:3:" in str(exc.value) and "did you mean `buildArgs`?" in str(exc.value)


@pytest.mark.parametrize("field,snippet", [
    ("cliFlags", "cliFlags: [--squash]"), ("squash", "squash: true"), ("secrets", "secrets: [{id: a}]"),
    ("network", "network: host"), ("addHost", "addHost: ['a:1.2.3.4']"), ("ssh", "ssh: default"),
])
def test_a_docker_field_that_changes_the_image_is_refused_by_name(tmp_path, field, snippet):
    path = write(tmp_path, f"build:\n  artifacts:\n  - image: app\n    docker: {{{snippet}}}\n")
    msg = error(path)
    assert f"build.artifacts[0].docker.{field} changes the image" in msg and "skaffold.yaml:6:" in msg


def test_platforms_one_or_several_from_the_artifact_or_the_build(tmp_path):
    two = write(tmp_path, "build:\n  platforms: [linux/amd64, linux/aarch64]\n  artifacts:\n  - image: app\n")
    assert load(two).artifacts[0].platforms == ("linux/amd64", "linux/arm64")
    one = write(tmp_path, "build:\n  platforms: [linux/amd64]\n  artifacts:\n  - image: app\n"
                "    platforms: [linux/arm64]\n")
    assert load(one).artifacts[0].platform == "linux/arm64"
    bad = write(tmp_path, "build:\n  artifacts:\n  - image: app\n    platforms: [linux/amd64, linux/x86_64]\n")
    assert "skaffold.yaml:6: build.artifacts[0].platforms lists linux/amd64 twice" in error(bad)


def test_local_push_false_is_refused_with_the_reason(tmp_path):
    path = write(tmp_path, "build:\n  local: {push: false}\n  artifacts:\n  - image: app\n")
    msg = error(path)
    assert "skaffold.yaml:4: build.local.push: false" in msg and "without one" in msg


def test_requires_as_a_plain_name_is_a_clear_error_not_a_traceback(tmp_path):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: base\n  - image: app\n    requires: [base]\n")
    msg = error(path)
    assert "build.artifacts[1].requires[0] must be a mapping" in msg and "- image: base" in msg


def test_requires_without_alias_is_build_order_only(tmp_path):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: app\n    requires: [{image: base}]\n"
                 "  - image: base\n")
    p = load(path)
    app = p.artifact("app")
    assert app.requires == (config.Requirement("base", ""),)


def test_a_multi_document_file_with_one_bad_document_names_its_line(tmp_path):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: app\n---\n" + HEAD + "build:\n  artifact: []\n")
    msg = error(path)
    assert "skaffold.yaml:10:" in msg and "did you mean `artifacts`?" in msg


# ---------------------------------------------------------------- build args


def test_null_build_arg_takes_the_environment_or_is_left_out(tmp_path):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: app\n    docker:\n      buildArgs:\n"
                 "        MSG: null\n        OTHER:\n        V: 1.10\n")
    assert load(path, env={"MSG": "hi"}).artifacts[0].build_args == (("MSG", "hi"), ("V", "1.10"))


@pytest.mark.parametrize("template,env,expected", [
    ("{{.USER}}", {"USER": "ann"}, "ann"),
    ('{{default "x" .NOPE_UNSET}}', {}, "x"),
    ('{{default "x" .SET}}', {"SET": "y"}, "y"),
    ('{{ .A | upper }}-{{ lower "B" }}', {"A": "a"}, "A-b"),
    ('{{ .SHA | substr 0 7 }}', {"SHA": "0123456789abcdef"}, "0123456"),
    ('{{ .V | trimPrefix "v" }}', {"V": "v1.2"}, "1.2"),
    ('{{ replace "/" "-" .B }}', {"B": "feat/x"}, "feat-x"),
    ('{{ printf "%s-%s" .A .B }}', {"A": "a", "B": "b"}, "a-b"),
    ('a {{- " b " -}} c', {}, "a b c"),
    ('{{ cmd "echo" "from cmd" }}', {}, "from cmd"),
    ("plain $HOME text", {}, "plain $HOME text"),  # Skaffold expands templates only, not $VAR
])
def test_templates_evaluate_as_skaffold_does(template, env, expected):
    assert templates.expand(template, env)[0] == expected


def test_template_with_an_unset_variable_is_skaffolds_no_value_with_a_warning(tmp_path):
    unset = write(tmp_path, "build:\n  artifacts:\n  - image: app\n    docker:\n      buildArgs:\n"
                  "        MSG: 'x-{{.NOPE_UNSET}}'\n")
    p = load(unset)
    assert p.artifacts[0].build_args == (("MSG", "x-<no value>"),)  # what Go's template gives Skaffold
    assert any(w.startswith("skaffold.yaml:8: build.artifacts[0].docker.buildArgs.MSG: NOPE_UNSET is not set")
               for w in p.warnings)


def test_template_with_an_unknown_function_or_an_action_is_refused_in_skaffold_words(tmp_path):
    unknown = write(tmp_path, "build:\n  artifacts:\n  - image: app\n    docker:\n      buildArgs:\n"
                    "        MSG: '{{ now | date \"2006\" }}'\n")
    assert "the template function `now` is not supported" in error(unknown)
    control = write(tmp_path, "build:\n  artifacts:\n  - image: app\n    docker:\n      buildArgs:\n"
                    "        MSG: '{{ if .A }}x{{ end }}'\n")
    assert "`if` actions are not supported" in error(control)


# ---------------------------------------------------------------- default repo


@pytest.mark.parametrize("image,repo,expected", [
    # the cases of Skaffold's TestImageReplaceDefaultRepo (pkg/skaffold/docker/default_repo_test.go)
    ("gcr.io/some/registry", "gcr.io/default", "gcr.io/default/gcr.io/some/registry"),
    ("github.com/org/app", "us-central1-docker.pkg.dev/default", "us-central1-docker.pkg.dev/default/github.com/org/app"),
    ("gcr.io/some/registry", None, "gcr.io/some/registry"),
    ("gcr.io/default/registry", "gcr.io/default", "gcr.io/default/registry"),
    ("eu.gcr.io/project/registry", "eu.gcr.io/project", "eu.gcr.io/project/registry"),
    ("gcr.io/default/example/registry", "gcr.io/default/repository", "gcr.io/default/repository/example/registry"),
    ("gcr.io/some/registry", "aws_account_id.dkr.ecr.region.amazonaws.com",
     "aws_account_id.dkr.ecr.region.amazonaws.com/gcr_io_some_registry"),
    ("gcr.io/k8s-skaffold/skaffold-example", "gcr.io/k8s-skaffold", "gcr.io/k8s-skaffold/skaffold-example"),
    ("myrepo/skaffold-example", "myrepo", "myrepo/skaffold-example"),
    ("img", "gcr.io/default", "gcr.io/default/img"),
    # the documented examples ("Image Repository Handling")
    ("gcr.io/k8s-skaffold/skaffold-example1", "gcr.io/myproject/myimage",
     "gcr.io/myproject/myimage/gcr.io/k8s-skaffold/skaffold-example1"),
    ("gcr.io/k8s-skaffold/skaffold-example1", "gcr.io/k8s-skaffold/myimage",
     "gcr.io/k8s-skaffold/myimage/skaffold-example1"),
    # a local registry
    ("gcr.io/k8s-skaffold/base", "127.0.0.1:5000/sk1", "127.0.0.1:5000/sk1/gcr_io_k8s-skaffold_base"),
    ("svc", "127.0.0.1:5000/sk1", "127.0.0.1:5000/sk1/svc"),
])
def test_default_repo_follows_skaffolds_rules(image, repo, expected):
    assert refs.skaffold_default_repo(repo, image) == expected


def test_default_repo_long_names_are_cut_to_255():
    image = "gcr.io/" + "x" * 300
    assert len(refs.skaffold_default_repo("aws_account_id.dkr.ecr.region.amazonaws.com", image)) == 255


def test_default_repo_comes_from_the_flag_then_skaffold_default_repo(tmp_path):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: gcr.io/k8s-skaffold/base\n")
    env = {"SKAFFOLD_DEFAULT_REPO": "127.0.0.1:5000/env"}
    assert str(load(path, env=env).artifacts[0].ref) == "127.0.0.1:5000/env/gcr_io_k8s-skaffold_base"
    assert str(load(path, env=env, default_repo="127.0.0.1:5000/flag").artifacts[0].ref).startswith(
        "127.0.0.1:5000/flag/")
    assert "--default-repo 'Bad Repo'" in error(path, default_repo="Bad Repo")


# ---------------------------------------------------------------- profiles


PROFILES = """build:
  artifacts:
  - image: app
profiles:
- name: by-env
  activation: [{env: STAGE=prod}]
  build:
    artifacts:
    - image: app
      docker: {buildArgs: {MSG: env}}
- name: by-command
  activation: [{command: dev}]
  build:
    artifacts:
    - image: dev-only
- name: patched
  patches:
  - path: /build/artifacts/0/image
    value: app2
  - op: add
    path: /build/artifacts/0/docker
    value: {target: final}
  - op: add
    path: /build/artifacts/-
    value: {image: added}
- name: both
  requiresAllActivations: true
  activation: [{env: A=1}, {env: B=!x}]
  build:
    tagPolicy: {sha256: {}}
- name: on-context
  activation: [{kubeContext: minikube}]
  build:
    artifacts:
    - image: ctx
"""


def test_profiles_activate_by_env_and_command_as_in_skaffold(tmp_path):
    path = write(tmp_path, PROFILES)
    assert load(path).artifacts[0].build_args == ()
    assert load(path, env={"STAGE": "prod"}).artifacts[0].build_args == (("MSG", "env"),)
    assert load(path, env={"STAGE": "production"}).artifacts[0].build_args == (("MSG", "env"),)  # a search
    assert [a.name for a in load(path).artifacts] == ["app"]  # command `dev` is not regless's `build`
    assert load(path, env={"A": "1", "B": "y"}).artifacts[0].deploy_tag == "latest"
    assert load(path, env={"A": "1", "B": "x"}).artifacts[0].deploy_tag is None
    p = load(path)
    assert any("kubeContext" in w and "on-context" in w for w in p.warnings)
    assert [a.name for a in load(path, profiles=("on-context",)).artifacts] == ["ctx"]


def test_patches_and_named_profiles(tmp_path):
    path = write(tmp_path, PROFILES, contexts=(".",))
    p = load(path, profiles=("patched",))
    assert [(a.name, a.target) for a in p.artifacts] == [("app2", "final"), ("added", None)]  # op: replace by default
    assert load(path, env={"STAGE": "prod"}, profiles=("-by-env",)).artifacts[0].build_args == ()
    assert "no profile named 'nope'" in error(path, profiles=("nope",))


def test_a_patch_that_does_not_apply_names_the_profile_and_its_line(tmp_path):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: app\nprofiles:\n- name: bad\n  patches:\n"
                 "  - op: replace\n    path: /build/artifacts/3/image\n    value: x\n")
    msg = error(path, profiles=("bad",))
    assert "skaffold.yaml:9: profiles[0].patches[0] (replace /build/artifacts/3/image)" in msg


def test_a_patch_that_writes_a_typo_is_refused(tmp_path):
    path = write(tmp_path, "build:\n  artifacts:\n  - image: app\nprofiles:\n- name: bad\n  patches:\n"
                 "  - op: add\n    path: /build/artifacts/0/contxt\n    value: x\n")
    assert "did you mean `context`?" in error(path, profiles=("bad",))


# ---------------------------------------------------------------- multi-config


def test_multi_config_requires_paths_and_configs_with_their_own_folders(tmp_path):
    write(tmp_path / "base", "metadata: {name: base-cfg}\nbuild:\n  artifacts:\n  - image: base\n    context: src\n"
          "---\n" + HEAD + "metadata: {name: other}\nbuild:\n  artifacts:\n  - image: other\n    context: src\n",
          contexts=("src",))
    write(tmp_path / "app", "build:\n  artifacts:\n  - image: app\n    requires: [{image: base, alias: BASE}]\n")
    top = write(tmp_path, "requires:\n- path: ./base\n  configs: [base-cfg]\n- path: app/skaffold.yaml\n",
                contexts=())
    p = load(top)
    assert [a.name for a in p.artifacts] == ["base", "app"]
    assert p.artifact("base").context == (tmp_path / "base" / "src").resolve()
    assert p.artifact("app").context == (tmp_path / "app").resolve()
    missing = write(tmp_path, "requires:\n- path: ./nowhere\n", contexts=())
    assert "skaffold.yaml:4: requires[0].path" in error(missing)
    git = write(tmp_path, "requires:\n- git: {repo: x}\n", contexts=())
    assert "requires[0].git: regless reads configs from local files only" in error(git)


def test_active_profiles_of_a_required_config(tmp_path):
    write(tmp_path / "base", "build:\n  artifacts:\n  - image: base\nprofiles:\n- name: fast\n  build:\n"
          "    tagPolicy: {sha256: {}}\n")
    top = write(tmp_path, "requires:\n- path: base\n  activeProfiles: [{name: fast}]\n", contexts=())
    assert load(top).artifacts[0].deploy_tag == "latest"
    # activatedBy: only when one of these profiles of the requiring config is active (here: by env)
    top = write(tmp_path, "requires:\n- path: base\n  activeProfiles: [{name: fast, activatedBy: [ci]}]\n"
                "profiles:\n- name: ci\n  activation: [{env: CI=true}]\n", contexts=())
    assert load(top).artifacts[0].deploy_tag is None
    assert load(top, env={"CI": "true"}).artifacts[0].deploy_tag == "latest"


def test_configs_of_the_same_file_and_cycles(tmp_path):
    path = write(tmp_path, "metadata: {name: app}\nrequires: [{configs: [base]}]\nbuild:\n  artifacts:\n"
                 "  - image: app\n    requires: [{image: base}]\n---\n" + HEAD +
                 "metadata: {name: base}\nbuild:\n  artifacts:\n  - image: base\n")
    assert [a.name for a in load(path).artifacts] == ["base", "app"]  # required first, each once
    cycle = write(tmp_path, "metadata: {name: a}\nrequires: [{configs: [b]}]\n---\n" + HEAD +
                  "metadata: {name: b}\nrequires: [{configs: [a]}]\n")
    assert "requires cycle: skaffold.yaml#1 -> skaffold.yaml#2 -> skaffold.yaml#1" in error(cycle)


# ---------------------------------------------------------------- tagPolicy


def test_tag_policies_give_skaffolds_tags(tmp_path):
    def tag(policy: str, env: dict[str, str] | None = None) -> str | None:
        path = write(tmp_path, f"build:\n  tagPolicy: {policy}\n  artifacts:\n  - image: app\n")
        return load(path, env=env or {}).artifacts[0].deploy_tag

    assert tag("{sha256: {}}") == "latest"
    assert tag("{envTemplate: {template: '{{.FOO}}-{{.IMAGE_NAME}}'}}", {"FOO": "v1"}) == "v1-app"
    assert tag("{dateTime: {format: '2006-01-02', timezone: UTC}}") is not None
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "tag", "v9"], check=True)
    assert tag("{gitCommit: {ignoreChanges: true}}") == "v9"
    assert tag("{gitCommit: {}}") == "v9-dirty"  # untracked files in the context
    assert tag("{customTemplate: {template: '{{.FOO}}_{{.GIT}}', components: [{name: FOO, sha256: {}}]}}") == \
        "latest_v9-dirty"
    env_unset = write(tmp_path, "build:\n  tagPolicy: {envTemplate: {template: '{{.NOPE}}'}}\n  artifacts:\n"
                      "  - image: app\n")
    assert "build.tagPolicy.envTemplate: NOPE is not set" in error(env_unset)


def test_go_date_layouts():
    import datetime as dt

    from reglessbuild.skaffold import tags

    when = dt.datetime(2026, 12, 1, 21, 5, 9, 120000, tzinfo=dt.UTC)
    assert tags.go_time_format(tags.DEFAULT_DATE_FORMAT, when) == "2026-12-01_21-05-09.12_UTC"
    assert tags.go_time_format("20060102T150405", when) == "20261201T210509"


@pytest.mark.parametrize("requires, words, line", [
    ("[{image: nope, alias: X}]", "'nope' is not an artifact of this project", 4),  # at the requires entry
    ("[{image: app, alias: X}]", "requires cycle: app -> app", 3),  # at the artifact
])
def test_requires_is_checked_by_one_code_for_both_files(tmp_path, requires, words, line):
    """project.check_requires checks both loaders' artifacts: the same fault, the same words, each at its
    own file's place (regless.yaml's artifacts[0], skaffold.yaml's build.artifacts[0])."""
    sk = error(write(tmp_path / "s", f"build:\n  artifacts:\n  - image: app\n    requires: {requires}\n"))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "Dockerfile").write_text("FROM scratch\n")
    rg = tmp_path / "r" / "regless.yaml"
    rg.write_text(f"apiVersion: regless/v1\nartifacts:\n  - image: app\n    requires: {requires}\n")
    with pytest.raises(InputError) as exc:
        config.load(rg, env={})
    assert words in sk and words in str(exc.value), (sk, str(exc.value))
    assert "skaffold.yaml:" in sk and f"regless.yaml:{line}:" in str(exc.value)
