"""One JSON contract for every command with data: one document on stdout, held to docs/output.schema.json.

Each command runs for real on the demo project (a build that fails and skips too) with --output json;
its stdout must be one JSON document that the schema (draft 2020-12, checked by `jsonschema`) accepts,
with the envelope every document shares: `version`, `command`, `warnings`.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from conftest import ROOT
from reglessbuild import documents
from reglessbuild.outcomes import Fault, Outcome, Why


def _unique(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key twice in the schema: {keys}"  # JSON keeps the last silently
    return dict(pairs)


SCHEMA = json.loads((ROOT / "docs" / "output.schema.json").read_text(), object_pairs_hook=_unique)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
DEFS = {"build": "build", "plan": "plan", "explain": "explain", "hash": "hashDoc", "deps": "deps",
        "cache ls": "cacheLs", "cache show": "cacheShow", "cache verify": "cacheVerify", "cache export": "cacheExport"}


def _doc(res, command: str) -> dict:
    assert "Traceback" not in res.stderr, res.stderr
    doc = json.loads(res.stdout)  # one document: json.loads refuses anything after it
    one = jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{DEFS[command]}"})
    errors = sorted(one.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, f"{command}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    assert VALIDATOR.is_valid(doc)  # and it is one of the documents the whole schema allows
    assert doc["version"] == documents.VERSION == 2 and doc["command"] == command and isinstance(doc["warnings"], list)
    return doc


def test_the_schema_is_valid_and_its_keys_are_camel_case():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            names.extend(node.get("properties", {}))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(SCHEMA)
    assert names and all(re.fullmatch(r"[a-z]+([A-Z][a-z]+)*", n) for n in names), names


def test_the_schema_lists_the_codes_regless_has():
    """outcomes.py's enums are the fixed sets the schema allows: a code added there is added here."""
    defs = SCHEMA["$defs"]
    assert defs["outcome"]["enum"] == [o.value for o in Outcome]
    assert defs["reason"]["properties"]["code"]["enum"] == [w.value for w in Why]
    assert defs["error"]["properties"]["code"]["enum"] == [f.value for f in Fault]


def test_every_command_writes_one_document_the_schema_accepts(demo):
    build = _doc(demo.run("build", "--output", "json"), "build")
    assert {a["outcome"] for a in build["artifacts"]} == {"built"}
    assert {a["reason"]["code"] for a in build["artifacts"]} == {"noImage"}
    assert build["artifacts"][0]["reason"]["message"] == "no image for this hash"
    assert build["registryTool"]["source"] == "PATH" and build["builder"] == {"name": "buildah", "source": "config"}
    assert {a["outcome"] for a in _doc(demo.run("build", "--output", "json"), "build")["artifacts"]} == {"cached"}
    plan = _doc(demo.run("plan", "--output", "json"), "plan")
    assert {a["outcome"] for a in plan["artifacts"]} == {"cached"}
    assert all(a["reason"]["code"] == "found" and a["reason"]["reference"] == a["reference"] for a in plan["artifacts"])
    explain = _doc(demo.run("explain", "tools", "--output", "json"), "explain")
    assert explain["outcome"] == "cached" and explain["previousHash"] == explain["hash"]
    h = _doc(demo.run("hash", "tools", "--output", "json"), "hash")
    assert h["hash"] == explain["hash"]
    deps = _doc(demo.run("deps", "tools", "--output", "json"), "deps")
    assert deps["hash"] == h["hash"] and deps["bases"][0]["digest"].startswith("sha256:")
    ls = _doc(demo.run("cache", "ls", "--output", "json"), "cache ls")
    assert len(ls["entries"]) == 3
    show = _doc(demo.run("cache", "show", h["hash"][:8], "--output", "json"), "cache show")
    assert show["entry"]["hash"] == h["hash"]
    verify = _doc(demo.run("cache", "verify", "--output", "json"), "cache verify")
    assert verify["alive"] == 3 and verify["dead"] == 0
    export = _doc(demo.run("cache", "export", "-", "--output", "json"), "cache export")
    assert export["entries"] == sorted(ls["entries"], key=lambda e: e["hash"]) or len(export["entries"]) == 3
    # a change, a failure and what it skips: the same words in build, plan and explain
    df = demo.path / "tools" / "Dockerfile"
    df.write_text(df.read_text() + "RUN false\n")
    plan = _doc(demo.run("plan", "--output", "json"), "plan")
    assert {a["name"]: a["outcome"] for a in plan["artifacts"]} == {"web": "cached", "tools": "built", "app": "built"}
    assert _doc(demo.run("explain", "tools", "--output", "json"), "explain")["outcome"] == "built"
    failed = demo.run("build", "--output", "json")
    assert failed.returncode == 1
    doc = _doc(failed, "build")
    assert {a["name"]: a["outcome"] for a in doc["artifacts"]} == {"web": "cached", "tools": "failed",
                                                                    "app": "skipped"}
    tools, app = doc["artifacts"][1], doc["artifacts"][2]
    assert tools["error"]["code"] == "buildFailed" and tools["error"]["message"]
    assert app["error"] == {"code": "requiredFailed", "requires": ["tools"], "message": "requires tools, which failed"}
    # the text plan says the JSON's words: `built`, never `build`
    text = demo.run("plan").stdout.splitlines()
    assert sorted(ln.split()[0] for ln in text if not ln.startswith(" ")) == ["built", "built", "cached"], text
    assert doc["artifacts"][1]["log"].endswith("tools.log")


def test_warnings_are_in_the_document(demo):
    (demo.path / "web" / "Dockerfile").write_text("FROM scratch\nADD https://example.invalid/a.txt /a.txt\n")
    doc = _doc(demo.run("plan", "--output", "json"), "plan")
    assert any(w.startswith("web: ") and "https://example.invalid/a.txt" in w for w in doc["warnings"]), doc


@pytest.mark.parametrize("bad", [
    {"version": 2, "command": "plan", "artifacts": [{"name": "a", "reference": None, "hash": None,
                                                     "action": "build", "reason": "", "source": None}],
     "warnings": []},
    {"version": 2, "command": "cache ls", "entries": [], "warnings": "none"},
    {"version": 2, "command": "build", "artifacts": [], "phases": {}, "registryTool": "skopeo (PATH)",
     "builder": {"name": "buildah", "source": "config"}, "registryCalls": 0, "buildsStarted": 0, "warnings": []},
    {"version": 2, "command": "plan", "fanout": {"jobs": 1, "waves": [], "shares": [], "costs": {}},
     "artifacts": [{"name": "a", "reference": None, "hash": None, "outcome": "built", "reason": "no image for this hash",
                    "source": None, "why": []}], "warnings": []},
    {"version": 2, "command": "plan", "fanout": {"jobs": 1, "waves": [], "shares": [], "costs": {}},
     "artifacts": [{"name": "a", "reference": None, "hash": None, "outcome": "built",
                    "reason": {"code": "because", "message": "m"}, "source": None, "why": []}], "warnings": []},
])
def test_the_schema_refuses_what_the_contract_rules_out(bad):
    # `action` (not `outcome`), prose for a list or an object, a reason as a sentence or with an unknown code
    assert not VALIDATOR.is_valid(bad)


def test_every_reason_and_error_code_renders_as_the_schema_says():
    """Each code of outcomes.py, with its detail, as documents.py writes it: a value the schema accepts, and
    the message the text output prints beside it."""
    from reglessbuild.errors import BuildError, RegistryAuthError, RegistryError, RegistryUnreachable
    from reglessbuild.outcomes import Failure, Reason
    from reglessbuild.waiting import WaitTimeout

    detail = {Why.FOUND: {"reference": "r.example/a:" + "0" * 32}, Why.SAME_INPUTS: {"reference": "r.example/b:1"},
              Why.OTHER_SHARE: {"share": "2/3"}, Why.UNSUPPORTED: {"builder": "jib"},
              Why.REQUIRES_LEFT_OUT: {"requires": ("a", "b")}}
    reason = jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/reason"})
    for why in Why:
        r = Reason(why, **detail.get(why, {}))  # type: ignore[arg-type]
        doc = documents.reason(r)
        assert reason.is_valid(doc) and doc is not None and doc["code"] == why.value, doc
        assert doc["message"] == str(r) and "None" not in doc["message"], doc
    error = jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/error"})
    raised = {Fault.BUILD_FAILED: BuildError("b"), Fault.REGISTRY_FAILED: RegistryError("r"),
              Fault.REGISTRY_UNREACHABLE: RegistryUnreachable("u"), Fault.REGISTRY_REFUSED: RegistryAuthError("a"),
              Fault.SHARE_TIMED_OUT: WaitTimeout("w"), Fault.ERROR: ValueError("v")}
    for fault, exc in raised.items():
        doc = documents.error(Failure.of(exc))
        assert error.is_valid(doc) and doc == {"code": fault.value, "message": str(exc)}, doc
    doc = documents.error(Failure.required(("tools",)))
    assert error.is_valid(doc) and doc == {"code": "requiredFailed", "requires": ["tools"],
                                           "message": "requires tools, which failed"}
    assert set(raised) | {Fault.REQUIRED_FAILED} == set(Fault)
