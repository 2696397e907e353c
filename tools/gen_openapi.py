"""Generate src/berth/cluster/openapi_docs/: the /openapi/v2 and /openapi/v3 documents the embedded
cluster serves, cut from upstream's own (k8s.io/kubernetes api/openapi-spec in the Go module
cache, what kube-apiserver serves) to the resources and subresources it serves, with every
schema they reach. So `kubectl explain`, kubectl's validation and server-side apply read the
official 1.37 schemas.

The protobuf form of v2 (what client-go reads) is made by tools/openapi-pb, with gnostic's own
parser, so this needs Go. Run after adding a resource to berth/cluster/resources.py
(tests/cluster/test_openapi.py fails until the documents list it):

    .venv/bin/python tools/gen_openapi.py [SPEC_DIR]
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from berth.cluster.resources import RESOURCES, ResourceType

DEFAULT_SPEC = Path("/root/go/pkg/mod/k8s.io/kubernetes@v1.37.2/api/openapi-spec")
OUT = Path(__file__).resolve().parents[1] / "src" / "berth" / "cluster" / "openapi_docs"
PB_TOOL = Path(__file__).resolve().parent / "openapi-pb"  # Go: JSON -> gnostic protobuf
_PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))"
    r"(?:/watch)?(?:/namespaces/\{namespace\})?/(?P<plural>[a-z0-9]+)(?:/\{name\}(?:/(?P<sub>[a-z]+))?)?$"
)


def _served(path: str, resources: list[ResourceType]) -> bool:
    """Whether an upstream path addresses a resource (or subresource) the cluster serves; the
    discovery paths of its groups too."""
    m = _PATH.match(path)
    if m is None:
        gv = {(r.group, r.version) for r in resources}
        return any(
            path.rstrip("/") == ("/api/v1" if not g else f"/apis/{g}/{v}") for g, v in gv
        ) or path.rstrip("/") in {"/api", "/apis"} | {f"/apis/{g}" for g, _ in gv if g}
    group, version = (m["g"], m["v"]) if m["g"] else ("", "v1")
    for r in resources:
        if (r.group, r.version, r.plural) == (group, version, m["plural"]):
            if m["plural"] == "namespaces" and m["sub"] is None and "{name}" not in path:
                return True
            return m["sub"] is None or m["sub"] in r.subresources
        # a namespaced path's `namespaces/{namespace}/...` is matched above by its plural
    return False


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref.rsplit("/", 1)[-1])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def _closure(start: set[str], table: dict[str, Any]) -> dict[str, Any]:
    seen: set[str] = set()
    todo = sorted(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in table:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(table[name], found)
        todo.extend(found - seen)
    return {k: table[k] for k in sorted(seen)}


def _resources() -> list[ResourceType]:
    return [r for r in RESOURCES if not r.custom]


def build_v2(spec_dir: Path) -> dict[str, Any]:
    doc = json.loads((spec_dir / "swagger.json").read_text())
    resources = _resources()
    paths = {p: v for p, v in doc["paths"].items() if _served(p, resources)}
    wanted: set[str] = set()
    _refs(paths, wanted)
    params = {k: v for k, v in doc["parameters"].items() if k in wanted}
    wanted_defs: set[str] = set()
    _refs(paths, wanted_defs)
    _refs(params, wanted_defs)
    definitions = _closure(wanted_defs, doc["definitions"])
    return {**doc, "paths": paths, "parameters": params, "definitions": definitions}


def _v3_name(group: str, version: str) -> str:
    return f"api__{version}_openapi.json" if not group else f"apis__{group}__{version}_openapi.json"


def build_v3(spec_dir: Path) -> dict[str, dict[str, Any]]:
    """The documents by group-version path (`api/v1`, `apis/apps/v1`)."""
    resources = _resources()
    out: dict[str, dict[str, Any]] = {}
    for group, version in sorted({(r.group, r.version) for r in resources}):
        doc = json.loads((spec_dir / "v3" / _v3_name(group, version)).read_text())
        paths = {p: v for p, v in doc["paths"].items() if _served(p, resources)}
        wanted: set[str] = set()
        _refs(paths, wanted)
        schemas = _closure(wanted, doc["components"]["schemas"])
        key = f"api/{version}" if not group else f"apis/{group}/{version}"
        out[key] = {**doc, "paths": paths, "components": {**doc["components"], "schemas": schemas}}
    return out


def write(spec_dir: Path, out: Path = OUT) -> list[Path]:
    """Write v2.json.gz and v3/<gv>.json.gz (gzip without a timestamp: reproducible)."""
    written = []
    out.mkdir(parents=True, exist_ok=True)
    (out / "v3").mkdir(exist_ok=True)
    docs = {"v2": build_v2(spec_dir)}
    docs.update({f"v3/{k.replace('/', '__')}": v for k, v in build_v3(spec_dir).items()})
    for name, doc in docs.items():
        target = out / f"{name}.json.gz"
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        target.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        written.append(target)
        if name == "v2":  # client-go reads /openapi/v2 only as gnostic's protobuf
            pb = subprocess.run(
                ["go", "run", "."], input=data, capture_output=True, check=True, cwd=PB_TOOL
            ).stdout
            target = out / "v2.pb.gz"
            target.write_bytes(gzip.compress(pb, compresslevel=9, mtime=0))
            written.append(target)
    return written


def main() -> None:
    spec_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC
    for path in write(spec_dir):
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
