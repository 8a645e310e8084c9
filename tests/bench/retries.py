"""bin/bench --retries: what one registry check costs against a registry that keeps failing, per tool.

For each tool on PATH (skopeo, crane) and each fault (every request 503; the manifest 503 after a good
ping; the manifest 429 without Retry-After), one check (Reliable.digest) runs through the fault proxy
until regless's deadline ends it. Reported: the tool calls regless made, the requests the proxy saw
(crane's HTTPS attempts fail at the TLS handshake and are not counted), and the wall time.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import harness  # noqa: E402
from faultproxy import FaultProxy, Rule  # noqa: E402

FAULTS = {"every request 503": None, "manifest 503": ("/manifests/", "503"), "manifest 429": ("/manifests/", "429")}


def run(deadline: float = 10.0) -> list[dict]:
    from reglessbuild import retrying as retry
    from reglessbuild.errors import RegistryError
    from reglessbuild.refs import parse
    from reglessbuild.registry import Crane, Reliable, Skopeo

    tools = {"skopeo": Skopeo} | ({"crane": Crane} if shutil.which("crane") else {})
    rows = []
    with tempfile.TemporaryDirectory(prefix="regless-bench-") as tmp, harness.LocalRegistry(Path(tmp)) as reg:
        base = harness.make_base_image(reg.address).split("@")[0]
        for fault, rule in FAULTS.items():
            for name, cls in tools.items():
                with FaultProxy(reg.address, rules=[Rule(rule[0], rule[1], times=10**6)] if rule else []) as proxy:
                    proxy.down = rule is None
                    adapter = cls(insecure=("127.0.0.1",))
                    calls = 0
                    inner = adapter.digest

                    def counted(ref, inner=inner):
                        nonlocal calls
                        calls += 1
                        return inner(ref)

                    adapter.digest = counted  # type: ignore[method-assign]
                    t0 = time.perf_counter()
                    try:
                        Reliable(adapter, retry.Policy(deadline=deadline)).digest(
                            parse(base.replace(reg.address, proxy.address)))
                    except RegistryError:
                        pass
                    rows.append({"fault": fault, "tool": name, "calls": calls, "requests": len(proxy.log),
                                 "seconds": time.perf_counter() - t0})
    return rows


if __name__ == "__main__":
    for r in run(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0):
        print(f"{r['fault']:<18} {r['tool']:<7} calls {r['calls']:>3}  requests {r['requests']:>4}  "
              f"{r['requests'] / max(r['calls'], 1):.1f} a call  {r['seconds']:.1f} s")
