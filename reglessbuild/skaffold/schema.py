"""The keys a skaffold.yaml may hold, and the strict check that refuses any other.

Skaffold itself refuses an unknown key (its YAML decoding is strict), so a typo such as
`contxt:` or `dockr:` never builds an image without what was asked for. The key trees
follow Skaffold's schema (pkg/skaffold/schema/latest/config.go, skaffold/v4beta13) plus
the keys older apiVersions had that its upgrades still read (kaniko's `buildContext`,
`flags`). Sections regless does not read (deploy, manifests, test, ...) are Skaffold's
to check: their contents are left alone.
"""

from __future__ import annotations

from typing import Any

from .data import Map, Places, Seq, did_you_mean, kind_of

ANY = object()  # contents not checked here
SCALAR = None

DOCKER = {k: SCALAR for k in ("dockerfile", "target", "network", "pullParent", "noCache", "squash", "ssh")} | {
    "buildArgs": ANY, "addHost": [SCALAR], "cacheFrom": [SCALAR], "cliFlags": [SCALAR], "secrets": ANY}

KANIKO = {k: SCALAR for k in (
    "cleanup", "insecure", "insecurePull", "force", "logTimestamp", "reproducible", "singleSnapshot", "skipTLS",
    "skipTLSVerifyPull", "skipUnusedStages", "useNewRun", "whitelistVarRun", "dockerfile", "target", "initImage",
    "image", "imagePullSecret", "digestFile", "imageFSExtractRetry", "imageNameWithDigestFile", "logFormat",
    "ociLayoutPath", "registryMirror", "snapshotMode", "pushRetry", "tarPath", "verbosity", "contextSubPath",
    "copyMaxRetries", "copyTimeout", "buildContextCompressionLevel")} | {
    "destination": ANY, "insecureRegistry": ANY, "skipTLSVerifyRegistry": ANY, "env": ANY, "cache": ANY,
    "registryCertificate": ANY, "label": ANY, "buildArgs": ANY, "volumeMounts": ANY, "ignorePaths": ANY,
    "buildContext": ANY, "flags": ANY}

UNSUPPORTED_TYPES = ("jib", "bazel", "buildpacks", "custom", "ko")
BUILDABLE_TYPES = ("docker", "kaniko")

ARTIFACT = {"image": SCALAR, "context": SCALAR, "sync": ANY, "requires": ANY, "hooks": ANY, "platforms": [SCALAR],
            "runtimeType": SCALAR, "docker": DOCKER, "kaniko": KANIKO} | {t: ANY for t in UNSUPPORTED_TYPES}

TAGGERS = {"gitCommit": {"variant": SCALAR, "prefix": SCALAR, "ignoreChanges": SCALAR},
           "sha256": ANY, "envTemplate": {"template": SCALAR},
           "dateTime": {"format": SCALAR, "timezone": SCALAR}, "inputDigest": ANY}
TAG_POLICY = TAGGERS | {"customTemplate": {"template": SCALAR, "components": [
    {"name": SCALAR} | {k: v for k, v in TAGGERS.items()}]}}

BUILD = {"artifacts": [ARTIFACT], "insecureRegistries": [SCALAR], "tagPolicy": TAG_POLICY, "platforms": [SCALAR],
         "hooks": ANY, "local": {"push": SCALAR, "tryImportMissing": SCALAR, "useDockerCLI": SCALAR,
                                 "useBuildkit": SCALAR, "concurrency": SCALAR},
         "googleCloudBuild": ANY, "cluster": ANY}

PIPELINE = {"build": BUILD, "test": ANY, "manifests": ANY, "deploy": ANY, "portForward": ANY,
            "resourceSelector": ANY, "verify": ANY, "customActions": ANY}

PROFILE = PIPELINE | {"name": SCALAR, "activation": [{"env": SCALAR, "kubeContext": SCALAR, "command": SCALAR}],
                      "requiresAllActivations": SCALAR,
                      "patches": [{"op": SCALAR, "path": SCALAR, "from": SCALAR, "value": ANY}]}

CONFIG_DEPENDENCY = {"configs": [SCALAR], "path": SCALAR, "git": ANY, "googleCloudStorage": ANY,
                     "googleCloudBuildRepoV2": ANY, "activeProfiles": [{"name": SCALAR, "activatedBy": [SCALAR]}]}

CONFIG = PIPELINE | {"apiVersion": SCALAR, "kind": SCALAR, "metadata": {"name": SCALAR, "labels": ANY,
                                                                        "annotations": ANY},
                     "requires": [CONFIG_DEPENDENCY], "profiles": [PROFILE]}


def check(value: Any, spec: Any, where: str, places: Places, parent: Any = None, key: Any = None) -> None:
    """Refuse keys the spec does not know (naming the closest known one) and lists or mappings of the wrong shape.

    A null stands for an empty value, as in Skaffold (`docker:` alone means all defaults).
    """
    if spec is ANY or value is None:
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise places.fail(f"{where} must be a mapping, not {kind_of(value)}", parent, key)
        for k in value:
            if k not in spec:
                close = did_you_mean(k, spec)
                hint = f"did you mean `{close}`?" if close else f"known keys here: {', '.join(sorted(spec))}"
                raise places.fail(f"unknown key {k!r} in {where or 'the config'}", value, k, hint=hint)
            check(value[k], spec[k], f"{where}.{k}" if where else k, places, value, k)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise places.fail(f"{where} must be a list, not {kind_of(value)}", parent, key)
        for i, item in enumerate(value):
            check(item, spec[0], f"{where}[{i}]", places, value, i)
    elif isinstance(value, (Map, Seq)):
        raise places.fail(f"{where} must be a single value, not {kind_of(value)}", parent, key)
