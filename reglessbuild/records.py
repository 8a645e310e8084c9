"""Input records: what an image was built from, stored in the registry beside the image.

A record is the workspace hash's ingredients (explain.snapshot: every input file's path, kind, exec bit
and content hash; the Dockerfile's hash, build args, target, platforms, base digests, required
artifacts' hashes) with the hash recipe's version, as gzip-compressed JSON. It is pushed as an OCI
artifact whose `subject` is the image, findable through the OCI 1.1 referrers tag schema: an image
index at tag `sha256-<hex of the image digest>` in the image's repository lists the records that
refer to it. That schema works on registries without the referrers API (CNCF Distribution 2.8), and
the index is written by regless itself, so it is the same with skopeo and crane.

Records are data for explanations only: a cache decision rests on the hash tag's existence alone.
A record read back is checked for size and shape, and a malformed, oversized or foreign one is
refused with RecordError, never trusted.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import ReglessError
from .refs import ImageRef

ARTIFACT_TYPE = "application/vnd.regless.inputs.v1+json"
LAYER_TYPE = "application/vnd.regless.inputs.v1+json+gzip"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CREATED = "org.opencontainers.image.created"
BUILD_SECONDS = "dev.regless.buildSeconds"  # the image's build time, in seconds (store)
MAX_COMPRESSED = 8 << 20  # bytes of a record's blob regless reads at most
MAX_JSON = 64 << 20  # bytes of a record once decompressed


class RecordError(ReglessError):
    """A record that cannot be stored, or one read back that is not to be trusted."""


class Store(Protocol):
    """What records need of a registry tool: raw manifests, and OCI layouts pushed and pulled whole. A
    tool whose push of an index also pushes the manifests it names that the registry lacks (crane) says
    so with `index_children = True`: a record and its referrers index are then one push, not two."""

    def manifest(self, ref: ImageRef) -> bytes | None:
        """The manifest of `ref` as the registry serves it; None for a definite "not found"."""
        ...

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        """Push the one entry of the OCI layout to `ref` (a tag, or the entry's digest), digests kept;
        an index `index_only` without the manifests it names, which the registry has already."""
        ...

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        """Copy `ref` (a manifest and its blobs) into a new OCI layout."""
        ...


@dataclass(frozen=True)
class Found:
    """A record read back from the registry, with the image it refers to."""

    image: str  # repository@digest of the image the record describes
    created: str
    record: dict[str, Any]


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for the referrers of `digest` (OCI distribution-spec 1.1)."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}"


def encode(record: dict[str, Any]) -> bytes:
    """A record as the layer's bytes: sorted compact JSON, gzip without a timestamp, so that the same
    record always makes the same blob (and the same digest)."""
    return gzip.compress(json.dumps(record, sort_keys=True, separators=(",", ":")).encode(), mtime=0)


def decode(blob: bytes) -> dict[str, Any]:
    """A record from its blob, checked: size, gzip, JSON, and the shape explain.diff reads."""
    if len(blob) > MAX_COMPRESSED:
        raise RecordError(f"the inputs record is {len(blob)} bytes, over the {MAX_COMPRESSED} regless reads")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
            text = f.read(MAX_JSON + 1)
    except (OSError, EOFError) as exc:
        raise RecordError(f"the inputs record is not gzip data ({exc})") from exc
    if len(text) > MAX_JSON:
        raise RecordError(f"the inputs record is over {MAX_JSON} bytes once decompressed")
    try:
        record = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"the inputs record is not JSON ({exc})") from exc
    if not (isinstance(record, dict) and isinstance(record.get("hash"), str) and isinstance(record.get("files"), dict)
            and isinstance(record.get("settings"), dict)
            and all(isinstance(v, list) and len(v) == 3 for v in record["files"].values())):
        raise RecordError("the inputs record does not have the shape regless writes (hash, files, settings)")
    return record


def _blob(layout: Path, data: bytes, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    folder = layout / "blobs" / "sha256"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def subject_of(manifest: bytes, digest: str) -> dict[str, Any]:
    """The descriptor of an image from its manifest bytes."""
    try:
        media_type = json.loads(manifest).get("mediaType") or MANIFEST_TYPE
    except ValueError as exc:
        raise RecordError(f"the manifest of {digest} is not JSON") from exc
    return {"mediaType": media_type, "digest": digest, "size": len(manifest)}


def _layout(folder: Path, top: dict[str, Any]) -> Path:
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return folder


def write_record(folder: Path, record: dict[str, Any] | Staged, subject: dict[str, Any],
                 annotations: dict[str, str]) -> tuple[Path, dict[str, Any], bytes]:
    """An OCI layout of the record's artifact manifest with its blobs; its descriptor and bytes."""
    config = _blob(folder, b"{}", EMPTY_TYPE)
    layer = _blob(folder, record.layer if isinstance(record, Staged) else encode(record), LAYER_TYPE)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": ARTIFACT_TYPE, "config": config,
                "layers": [layer], "subject": subject, "annotations": annotations}
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    desc = _blob(folder, raw, MANIFEST_TYPE) | {"artifactType": ARTIFACT_TYPE, "annotations": annotations}
    return _layout(folder, desc), desc, raw


def _list(registry: Store, image: ImageRef, digest: str, desc: dict[str, Any], raw: bytes,
          existing: bytes | None, folder: Path) -> None:
    """List the record `desc` (manifest bytes `raw`, in the registry already) at `image@digest`'s
    referrers tag, with the entries listed there before. A tool that pushes an index reads each
    manifest it names (their blobs it finds in the registry), so they are put in the layout too."""
    listed = [m for m in _entries_or_none(existing) if m.get("digest") != desc["digest"]]
    for m in listed:
        got = registry.manifest(image.bare().with_digest(str(m.get("digest"))))
        if got is not None and hashlib.sha256(got).hexdigest() == str(m.get("digest")).partition(":")[2]:
            _blob(folder, got, str(m.get("mediaType", MANIFEST_TYPE)))
    _blob(folder, raw, MANIFEST_TYPE)
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [*listed, desc]}
    top = _blob(folder, json.dumps(index, separators=(",", ":")).encode(), INDEX_TYPE)
    registry.push_layout(_layout(folder, top), image.bare().with_tag(referrers_tag(digest)), index_only=True)


@dataclass(frozen=True)
class Staged:
    """A record encoded (its layer's bytes) before its image exists, its blobs perhaps in the registry
    already (stage): what store then pushes of it is its manifest and the referrers index."""

    hash: str  # the record's workspace hash
    layer: bytes  # encode(record)

    @classmethod
    def of(cls, record: dict[str, Any]) -> Staged:
        """`record` encoded, its hash beside it."""
        return cls(str(record.get("hash", "")), encode(record))


def stage(registry: Store, image: ImageRef, record: dict[str, Any]) -> Staged:
    """Encode `record` and push its blobs (the empty config and the layer) to `image`'s repository, while
    the image is still being built: a one-file build then waits at its end only for the record's manifest
    and the referrers index. The blobs go only where the registry is answered in this process (a Store
    with `push_blobs`, registry/direct.py); elsewhere, or on any failure, store pushes them as before. A
    blob of a build that then fails stays in the repository unnamed, as a push cut short leaves one."""
    staged = Staged.of(record)
    push = getattr(registry, "push_blobs", None)
    if push is not None:
        with tempfile.TemporaryDirectory(prefix="regless-record-") as tmp:
            blobs = [_blob(Path(tmp), b"{}", EMPTY_TYPE), _blob(Path(tmp), staged.layer, LAYER_TYPE)]
            push(Path(tmp), image.bare(), [str(b["digest"]) for b in blobs])
    return staged


def store(registry: Store, image: ImageRef, digest: str, record: dict[str, Any] | Staged, *, artifact: str,
          build_seconds: float | None = None) -> str:
    """Push `record` (or the record staged for it) for the image `image@digest` and list it at the
    image's referrers tag; returns the record manifest's digest ("" when a record of the same hash is
    listed there already). `build_seconds`, the image's build time, goes into the record's annotations
    (load gives it back as the record's buildSeconds): it is known only once the image is, after the
    record's layer was made."""
    subject_manifest = registry.manifest(image.bare().with_digest(digest))
    if subject_manifest is None:
        raise RecordError(f"{image.bare()}@{digest} is not in the registry")
    existing = registry.manifest(image.bare().with_tag(referrers_tag(digest)))
    staged = record if isinstance(record, Staged) else Staged.of(record)
    if existing is not None and _lists(existing, staged.hash):
        return ""
    annotations = {CREATED: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dev.regless.artifact": artifact,
                   "dev.regless.hash": staged.hash}
    if build_seconds is not None:
        annotations[BUILD_SECONDS] = f"{build_seconds:.1f}"
    subject = subject_of(subject_manifest, digest)
    with tempfile.TemporaryDirectory(prefix="regless-record-") as tmp:
        if getattr(registry, "index_children", False):
            # one push: the referrers index, and with it the record it names, from the same layout
            _, desc, raw = write_record(Path(tmp) / "referrers", staged, subject, annotations)
            _list(registry, image, digest, desc, raw, existing, Path(tmp) / "referrers")
        else:
            rec, desc, raw = write_record(Path(tmp) / "record", staged, subject, annotations)
            registry.push_layout(rec, image.bare().with_digest(str(desc["digest"])))
            _list(registry, image, digest, desc, raw, existing, Path(tmp) / "referrers")
    return str(desc["digest"])


def link(registry: Store, copy: Any, src: ImageRef, dst: ImageRef, digest: str) -> bool:
    """After a retag of `digest` from `src`'s repository to `dst`'s: the same record (the same manifest,
    copied by `copy(src_ref, dst_ref)`) listed among the referrers in `dst`'s repository too. False
    when `src` has no record to link."""
    if src.bare() == dst.bare():
        return True  # one repository: the record refers to the digest already
    index = registry.manifest(src.bare().with_tag(referrers_tag(digest)))
    entry = _newest(index) if index is not None else None
    if entry is None:
        return False
    rec_digest = str(entry["digest"])
    copy(src.bare().with_digest(rec_digest), dst.bare().with_digest(rec_digest))
    raw = registry.manifest(dst.bare().with_digest(rec_digest))
    if raw is None:
        raise RecordError(f"the copied record {dst.bare()}@{rec_digest} is not in the registry")
    existing = registry.manifest(dst.bare().with_tag(referrers_tag(digest)))
    if any(m.get("digest") == rec_digest and _ours(m) for m in _entries_or_none(existing)):
        return True  # (crane lists a manifest it copies itself, but without the annotations that tell)
    with tempfile.TemporaryDirectory(prefix="regless-record-") as tmp:
        desc = {k: v for k, v in entry.items() if k in ("mediaType", "digest", "size", "artifactType", "annotations")}
        _list(registry, dst, digest, desc, raw, existing, Path(tmp))
    return True


def _entries(index: bytes) -> list[dict[str, Any]]:
    """The descriptors a referrers index lists; RecordError for a tag that is not an index."""
    try:
        manifests = json.loads(index).get("manifests", [])
    except (ValueError, AttributeError) as exc:
        raise RecordError("the referrers index is not an index") from exc
    if not isinstance(manifests, list):
        raise RecordError("the referrers index is not an index")
    return [m for m in manifests if isinstance(m, dict)]


def _entries_or_none(index: bytes | None) -> list[dict[str, Any]]:
    """As _entries, where a missing tag or one that is not an index lists nothing (and is replaced)."""
    try:
        return _entries(index) if index is not None else []
    except RecordError:
        return []


def _newest(index: bytes) -> dict[str, Any] | None:
    """The newest regless record an index lists (the later one where two were made the same second)."""
    listed = [(i, m) for i, m in enumerate(_entries(index)) if _ours(m)]
    if not listed:
        return None
    return max(listed, key=lambda im: (str(im[1].get("annotations", {}).get(CREATED, "")), im[0]))[1]


def _ours(entry: Any) -> bool:
    """An entry of a referrers index that is a regless record. skopeo 1.9 drops a descriptor's
    artifactType when it writes an index (annotations survive), so either tells."""
    return isinstance(entry, dict) and (entry.get("artifactType") == ARTIFACT_TYPE
                                        or "dev.regless.hash" in (entry.get("annotations") or {}))


def _lists(index: bytes, hash_: str) -> bool:
    """Whether the referrers index already lists a record of the workspace hash `hash_`."""
    return any(_ours(m) and m.get("annotations", {}).get("dev.regless.hash") == hash_
               for m in _entries_or_none(index))


def load(registry: Store, image: ImageRef, digest: str) -> Found | None:
    """The newest record that refers to `image@digest`, or None when there is none. A record that is
    there but not to be trusted raises RecordError."""
    index = registry.manifest(image.bare().with_tag(referrers_tag(digest)))
    newest = _newest(index) if index is not None else None
    if newest is None:
        return None
    if int(newest.get("size", 0)) > MAX_COMPRESSED:
        raise RecordError("the inputs record's manifest is oversized")
    with tempfile.TemporaryDirectory(prefix="regless-record-") as tmp:
        layout = Path(tmp) / "layout"
        registry.pull_layout(image.bare().with_digest(str(newest["digest"])), layout)
        record = decode(_layer(layout, str(newest["digest"])))
    annotations = newest.get("annotations")
    annotations = annotations if isinstance(annotations, dict) else {}
    if "buildSeconds" not in record:  # a record stored since the layer is made during the build: store
        with contextlib.suppress(KeyError, TypeError, ValueError):
            record["buildSeconds"] = float(annotations[BUILD_SECONDS])
    return Found(f"{image.bare()}@{digest}", str(annotations.get(CREATED, "")), record)


def _layer(layout: Path, manifest_digest: str) -> bytes:
    blobs = layout / "blobs" / "sha256"
    try:
        manifest = json.loads((blobs / manifest_digest.partition(":")[2]).read_bytes())
        layers = [x for x in manifest.get("layers", []) if x.get("mediaType") == LAYER_TYPE]
        if manifest.get("artifactType") != ARTIFACT_TYPE or len(layers) != 1:
            raise RecordError("the referrer is not a regless inputs record")
        if int(layers[0].get("size", 0)) > MAX_COMPRESSED:
            raise RecordError(f"the inputs record is {layers[0]['size']} bytes, "
                              f"over the {MAX_COMPRESSED} regless reads")
        return (blobs / str(layers[0]["digest"]).partition(":")[2]).read_bytes()
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise RecordError(f"the inputs record could not be read ({exc})") from exc
