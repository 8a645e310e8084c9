"""An OCI layout's one entry pushed over HTTP in this process: what an inputs record's push needs.

An inputs record (records.py) is a few small pieces: an empty config blob, one gzip layer, the record's
manifest and the referrers index that lists it. Pushed by the registry tool they cost one crane process
(or two skopeo processes), which a one-file build waits for at its end. Where the registry's answers are
plain (manifesthttp.py's module doc: anonymous access or plain basic credentials, no token challenge, no
proxy, ...) they are pushed here instead, with the registry API's own requests, in the order a tool makes
them (go-containerregistry's remote.Write and WriteIndex): for each blob a HEAD, and where it is missing
a POST to start an upload and a PUT of its bytes to the Location answered; for an index, each manifest it
names that the registry lacks (a HEAD) is pushed first from the layout; then the manifest itself, PUT to
the tag or digest. The bytes sent are the layout's, so the registry holds what crane's push gives.

Anything else raises manifesthttp.Unhandled, and the caller (registry/direct.py) hands the whole push
to the tool, which has the whole protocol: an answer outside 200/404 (HEAD), 202 (POST), 201 (PUT), a
Location on another host, a digest that does not match the bytes, a nested index, a layout that is not
what records.py writes. A push is idempotent (blobs and manifests are addressed by their digest; the tag
is written last), so a push the tool finishes after a partial one here leaves what the tool alone would.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..manifesthttp import INDEXES, MODERN, ManifestClient, Unhandled


def push_blobs(client: ManifestClient, layout: Path, registry: str, repository: str, digests: list[str]) -> None:
    """Push these blobs of the layout `layout` where the registry lacks them (a HEAD each, then the upload),
    ahead of the push of a manifest that names them (push, given them as `there`): an inputs record's
    blobs while its image is still being built (records.stage). Unhandled as push."""
    top = _Pusher(client, layout, registry, repository)
    for digest in digests:
        top.blob(digest)


def push(client: ManifestClient, layout: Path, registry: str, repository: str, reference: str,
         there: frozenset[str] = frozenset()) -> str:
    """Push the one entry of the OCI layout `layout` to `registry/repository` at `reference` (a tag, or
    the entry's own digest); an index's manifests too where the registry lacks them, from the layout, as
    crane's push does (records.py's one-push listing relies on it; where the manifests are there already,
    skopeo's `index_only` case, the HEADs find them). `there`: blobs this process pushed to the repository
    already (push_blobs), which it neither asks for nor sends again. Returns the entry's digest; Unhandled
    for anything it does not push."""
    try:
        entries = json.loads((layout / "index.json").read_bytes()).get("manifests")
    except (OSError, ValueError, AttributeError) as exc:
        raise Unhandled(f"the layout's index.json: {exc}") from exc
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise Unhandled("a layout of other than one entry")
    top = _Pusher(client, layout, registry, repository, there)
    digest, media_type = str(entries[0].get("digest", "")), str(entries[0].get("mediaType", ""))
    if reference.startswith("sha256:") and reference != digest:
        raise Unhandled(f"pushing {digest} as {reference}")
    raw = top.read(digest)
    if media_type in INDEXES:
        for child in _field(_parsed(raw), "manifests"):  # a HEAD each, as crane's push makes
            if client.digest(registry, repository, str(child.get("digest")), str(child.get("digest"))) is None:
                top.manifest(top.read(str(child.get("digest"))), str(child.get("mediaType", "")),
                             str(child.get("digest")))
        top.put_manifest(raw, media_type, reference)
    else:
        top.manifest(raw, media_type, reference)
    return digest


def _parsed(raw: bytes) -> dict[str, Any]:
    """A manifest's or an index's JSON object; Unhandled if it is not one."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise Unhandled("a manifest that is not a JSON object") from exc
    if not isinstance(doc, dict):
        raise Unhandled("a manifest that is not a JSON object")
    return doc


def _field(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The descriptors listed under `name` in a manifest or index (`layers`, `manifests`); Unhandled if not."""
    listed = doc.get(name, [])
    if not isinstance(listed, list) or not all(isinstance(d, dict) for d in listed):
        raise Unhandled(f"a manifest whose {name} is not a list of descriptors")
    return listed


class _Pusher:
    """The requests of one push to one repository."""

    def __init__(self, client: ManifestClient, layout: Path, registry: str, repository: str,
                 there: frozenset[str] = frozenset()) -> None:
        self.client = client
        self.blobs = layout / "blobs" / "sha256"
        self.registry = registry
        self.repository = repository
        self.there = there  # blobs pushed to the repository by this process already

    def read(self, digest: str) -> bytes:
        """A blob of the layout, checked against its digest."""
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            raise Unhandled(f"a digest this push does not read: {digest[:80]!r}")
        try:
            data = (self.blobs / hexpart).read_bytes()
        except OSError as exc:
            raise Unhandled(f"the layout lacks {digest}") from exc
        if hashlib.sha256(data).hexdigest() != hexpart:
            raise Unhandled(f"the layout's {digest} does not match its bytes")
        return data

    def manifest(self, raw: bytes, media_type: str, reference: str) -> None:
        """An image (or artifact) manifest: its config and layers where missing, then itself."""
        if media_type in INDEXES:
            raise Unhandled("an index within an index")
        doc = _parsed(raw)
        for desc in [doc.get("config"), *_field(doc, "layers")]:
            if not isinstance(desc, dict):
                raise Unhandled("a manifest without a config descriptor")
            self.blob(str(desc.get("digest", "")))
        self.put_manifest(raw, media_type, reference)

    def blob(self, digest: str) -> None:
        """A blob where the registry lacks it: a HEAD, then a POST and a PUT of its bytes."""
        if digest in self.there:
            return
        base = f"/v2/{self.repository}/blobs/"
        status, _, _ = self.client.send("HEAD", self.registry, base + digest)
        if status == 200:
            return
        if status != 404:
            raise Unhandled(f"HEAD of a blob answered {status}")
        data = self.read(digest)
        status, headers, _ = self.client.send("POST", self.registry, base + "uploads/")
        location = headers.get("location", "")
        if status != 202 or not location:
            raise Unhandled(f"starting an upload answered {status}")
        sep = "&" if "?" in location else "?"
        status, headers, _ = self.client.send("PUT", self.registry, f"{location}{sep}digest={digest}",
                                              {"Content-Type": "application/octet-stream"}, data)
        if status != 201 or headers.get("docker-content-digest", digest) != digest:
            raise Unhandled(f"the upload of {digest} answered {status}")

    def put_manifest(self, raw: bytes, media_type: str, reference: str) -> None:
        """PUT the manifest's bytes to `reference`; the registry's digest of them must be theirs."""
        if media_type not in MODERN:
            raise Unhandled(f"a manifest of type {media_type!r}")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        status, headers, _ = self.client.send("PUT", self.registry, f"/v2/{self.repository}/manifests/{reference}",
                                              {"Content-Type": media_type}, raw)
        if status != 201 or headers.get("docker-content-digest", digest) != digest:
            raise Unhandled(f"the manifest's PUT to {reference} answered {status}")
