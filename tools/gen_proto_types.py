"""Generate src/berth/cluster/proto_types.json: the protobuf field numbers of every struct the
served kinds reach, read from the Go types' struct tags (k8s.io/api, k8s.io/apimachinery in the
Go module cache: `json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"`), so the
embedded cluster decodes the protobuf bodies client-go's typed clients send as upstream does.

Each field is [json name, kind, flags]: kind is a scalar (string, int, bool, double, bytes),
`msg:PKG.Type`, a special (`quantity`, `intorstring`, `time`, `microtime`, `duration`, `raw`,
`fieldsv1`), `[]KIND` or `map:KIND`; flags `o` (omitempty: a zero value is not shown in JSON),
`p` (a pointer: a zero value on the wire is a value) and `i` (an embedded struct inlined into
its parent's JSON, as `DeviceConfiguration` in resource.k8s.io's configurations).

    .venv/bin/python tools/gen_proto_types.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MOD = Path("/root/go/pkg/mod/k8s.io")
PACKAGES = {
    "k8s.io/api/core/v1": MOD / "api@v0.37.2/core/v1",
    "k8s.io/api/apps/v1": MOD / "api@v0.37.2/apps/v1",
    "k8s.io/api/batch/v1": MOD / "api@v0.37.2/batch/v1",
    "k8s.io/api/discovery/v1": MOD / "api@v0.37.2/discovery/v1",
    "k8s.io/api/policy/v1": MOD / "api@v0.37.2/policy/v1",
    "k8s.io/api/scheduling/v1": MOD / "api@v0.37.2/scheduling/v1",
    "k8s.io/api/storage/v1": MOD / "api@v0.37.2/storage/v1",
    "k8s.io/api/coordination/v1": MOD / "api@v0.37.2/coordination/v1",
    "k8s.io/api/events/v1": MOD / "api@v0.37.2/events/v1",
    "k8s.io/api/rbac/v1": MOD / "api@v0.37.2/rbac/v1",
    "k8s.io/api/autoscaling/v1": MOD / "api@v0.37.2/autoscaling/v1",
    "k8s.io/api/resource/v1": MOD / "api@v0.37.2/resource/v1",
    "k8s.io/apimachinery/pkg/apis/meta/v1": MOD / "apimachinery@v0.37.2/pkg/apis/meta/v1",
}
SPECIAL = {
    "k8s.io/apimachinery/pkg/api/resource.Quantity": "quantity",
    "k8s.io/apimachinery/pkg/util/intstr.IntOrString": "intorstring",
    "k8s.io/apimachinery/pkg/apis/meta/v1.Time": "time",
    "k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime": "microtime",
    "k8s.io/apimachinery/pkg/apis/meta/v1.Duration": "duration",
    "k8s.io/apimachinery/pkg/runtime.RawExtension": "raw",
    "k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1": "fieldsv1",
    "k8s.io/apimachinery/pkg/types.UID": "string",
}
SCALARS = {
    "string": "string",
    "bool": "bool",
    "int": "int",
    "int32": "int",
    "int64": "int",
    "uint32": "int",
    "uint64": "int",
    "float32": "double",
    "float64": "double",
    "byte": "int",
}
OUT = Path(__file__).resolve().parents[1] / "src" / "berth" / "cluster" / "proto_types.json"
_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.M | re.S)
_ALIAS = re.compile(r"^type (\w+) (\S[^\n{]*)$", re.M)
_FIELD = re.compile(r"^\s+(\w+)\s+([^\s`]+)\s+`([^`]*)`", re.M)
_EMBEDDED = re.compile(r"^\s+([\w.]+)\s+`([^`]*)`", re.M)  # metav1.ObjectMeta `json:"metadata"`
_IMPORT = re.compile(r'^\s*(\w+\s+)?"([^"]+)"', re.M)


def short(pkg: str) -> str:
    return "/".join(pkg.split("/")[-2:])  # k8s.io/api/apps/v1 -> apps/v1


def main() -> None:
    structs: dict[str, list[tuple[str, str, str]]] = {}
    aliases: dict[str, str] = {}
    imports: dict[str, dict[str, str]] = {}
    loaded: set[str] = set()

    def load(pkg: str, directory: Path) -> None:
        if pkg in loaded:
            return
        loaded.add(pkg)
        for f in sorted(directory.glob("*.go")):
            if f.name.endswith("_test.go") or f.name.startswith("zz_generated"):
                continue
            text = f.read_text()
            block = re.search(r"^import \((.*?)^\)", text, re.M | re.S)
            names = {}
            for alias, path in _IMPORT.findall(block.group(1) if block else ""):
                names[alias.strip() or path.rsplit("/", 1)[-1]] = path
            single = re.findall(r'^import (\w+ )?"([^"]+)"', text, re.M)
            for alias, path in single:
                names[alias.strip() or path.rsplit("/", 1)[-1]] = path
            for name, body in _STRUCT.findall(text):
                fields = _FIELD.findall(body)
                fields += [(go.rsplit(".", 1)[-1], go, tag) for go, tag in _EMBEDDED.findall(body)]
                structs[f"{pkg}.{name}"] = fields
                imports[f"{pkg}.{name}"] = names
            for name, target in _ALIAS.findall(text):
                aliases[f"{pkg}.{name}"] = target.split("//")[0].strip()
                imports.setdefault(f"{pkg}.{name}", names)

    for pkg, directory in PACKAGES.items():
        load(pkg, directory)

    def resolve(go: str, owner: str) -> str:
        pkg = owner.rsplit(".", 1)[0]
        if go.startswith("*"):
            return resolve(go[1:], owner)
        if go == "[]byte":
            return "bytes"
        if go.startswith("[]"):
            return "[]" + resolve(go[2:], owner)
        if go.startswith("map["):
            value = go[go.index("]") + 1 :]
            return "map:" + resolve(value, owner)
        if go in SCALARS:
            return SCALARS[go]
        if "." in go:
            alias, name = go.split(".", 1)
            full = f"{imports[owner].get(alias, alias)}.{name}"
        else:
            full = f"{pkg}.{go}"
        if full in SPECIAL:
            return SPECIAL[full]
        package = full.rsplit(".", 1)[0]
        if package.startswith("k8s.io/api/") and package not in loaded:
            load(package, MOD / "api@v0.37.2" / package[len("k8s.io/api/") :])
        if full in structs:
            return "msg:" + full
        if full in aliases:
            return resolve(aliases[full], full)
        raise KeyError(f"{owner}: cannot resolve Go type {go} ({full})")

    out: dict[str, dict[str, list[Any]]] = {}

    def visit(name: str) -> None:
        if name in out:
            return
        out[name] = {}
        for field, go, tag in structs[name]:
            # required fields have no opt/rep part: `protobuf:"bytes,2,name=spec"`
            proto = re.search(r'protobuf:"(\w+),(\d+),(?:(\w+),)?name=(\w+)', tag)
            if proto is None:
                continue
            js = re.search(r'json:"([^"]*)"', tag)
            parts = (js.group(1) if js else field).split(",")
            embedded = field == go.lstrip("*").rsplit(".", 1)[-1]
            # an embedded struct without a JSON name is inlined into its parent's JSON
            inline = embedded and not parts[0]
            json_name = "" if inline else parts[0] or field
            kind = resolve(go, name)
            flags = (
                ("o" if "omitempty" in parts or "omitzero" in parts else "")
                + ("p" if go.startswith("*") else "")
                + ("i" if inline else "")
            )
            out[name][proto.group(2)] = [json_name, kind, flags]
            for ref in re.findall(r"msg:(\S+)", kind):
                visit(ref)

    for name in list(structs):
        if name.rsplit(".", 1)[0] in PACKAGES and name.rsplit(".", 1)[0] != (
            "k8s.io/apimachinery/pkg/apis/meta/v1"
        ):
            visit(name)
    for key in ("ObjectMeta", "Status", "ListMeta", "LabelSelector", "DeleteOptions"):
        visit(f"k8s.io/apimachinery/pkg/apis/meta/v1.{key}")
    compact = {
        k.replace("k8s.io/api/", "").replace("k8s.io/apimachinery/pkg/apis/", ""): v
        for k, v in sorted(out.items())
    }
    text = json.dumps(compact, sort_keys=True, separators=(",", ":"))
    for full in out:
        text = text.replace(
            f"msg:{full}",
            "msg:" + full.replace("k8s.io/api/", "").replace("k8s.io/apimachinery/pkg/apis/", ""),
        )
    OUT.write_text(text + "\n")
    print(f"{OUT}: {len(out)} structs, {len(text)} bytes")


if __name__ == "__main__":
    main()
