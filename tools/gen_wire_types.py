"""Generate src/berth/cluster/wire_types.json: the JSON types of every kind the embedded cluster
serves, from upstream's OpenAPI v3 documents (k8s.io/kubernetes api/openapi-spec/v3 in the Go
module cache), so its typed-decode check is upstream's types and not a hand-kept copy.

Run after adding a resource to berth/cluster/resources.py (tests/cluster/test_wire_types.py
fails until the new kind is here):

    .venv/bin/python tools/gen_wire_types.py [SPEC_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from berth.cluster.resources import RESOURCES

DEFAULT_SPEC = Path("/root/go/pkg/mod/k8s.io/kubernetes@v1.37.2/api/openapi-spec/v3")
OUT = Path(__file__).resolve().parents[1] / "src" / "berth" / "cluster" / "wire_types.json"
# Types with their own JSON decoding upstream (custom UnmarshalJSON), not what OpenAPI says.
SPECIAL = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "quantity",  # string or number
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "time",  # RFC 3339
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",  # six fractional digits
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "any",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "any",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": "any",
}
PREFIXES = ("io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg.")


def short(name: str) -> str:
    for p in PREFIXES:
        if name.startswith(p):
            return name[len(p) :]
    return name


def build(spec_dir: Path) -> str:
    """The text of wire_types.json from the OpenAPI v3 documents in `spec_dir`."""
    schemas: dict[str, Any] = {}
    for f in sorted(spec_dir.glob("api*__v*_openapi.json")):
        schemas.update(json.loads(f.read_text())["components"]["schemas"])
    types: dict[str, Any] = {}

    def field(s: dict[str, Any]) -> Any:
        if "allOf" in s:
            s = s["allOf"][0]
        if "$ref" in s:
            name = s["$ref"].rsplit("/", 1)[-1]
            if name in SPECIAL:
                return SPECIAL[name]
            visit(name)
            return short(name)
        kind = s.get("type")
        if kind == "array":
            return ["[]", field(s["items"])]
        if kind == "object":
            if "additionalProperties" in s:
                return ["map", field(s["additionalProperties"])]
            return "any"
        if kind == "integer":
            return "int32" if s.get("format") == "int32" else "int64"
        return {"string": "string", "number": "float64", "boolean": "bool"}.get(kind, "any")

    def visit(name: str) -> None:
        key = short(name)
        if key in types:
            return
        types[key] = {}
        props = schemas[name].get("properties") or {}
        types[key] = {k: field(v) for k, v in sorted(props.items())}

    kinds: dict[str, str] = {}
    wanted = {(r.group, r.version, r.kind) for r in RESOURCES if not r.custom}
    wanted |= {("", "v1", "Binding"), ("policy", "v1", "Eviction"), ("autoscaling", "v1", "Scale")}
    for name, s in sorted(schemas.items()):
        for gvk in s.get("x-kubernetes-group-version-kind", []):
            key = (gvk["group"], gvk["version"], gvk["kind"])
            if key in wanted and not name.endswith("List"):
                visit(name)
                api_version = f"{key[0]}/{key[1]}" if key[0] else key[1]
                kinds[f"{api_version}/{key[2]}"] = short(name)
    missing = sorted(
        f"{g}/{v}/{k}".lstrip("/") for g, v, k in wanted if f"{g}/{v}/{k}".lstrip("/") not in kinds
    )
    if missing:
        sys.exit(f"no upstream schema for {', '.join(missing)} in {spec_dir}")
    source = f"k8s.io/kubernetes api/openapi-spec/v3 ({spec_dir.parent.parent.parent.name})"

    def block(items: dict[str, Any]) -> str:  # one entry a line, for readable diffs
        lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in items]
        return "{\n" + ",\n".join(lines) + "\n }"

    return (
        f'{{"source": {json.dumps(source)},\n "kinds": {block(sorted(kinds.items()))},\n'
        f' "types": {block(sorted(types.items()))}}}\n'
    )


def main(spec_dir: Path) -> None:
    OUT.write_text(build(spec_dir))
    print(f"{OUT}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC)
