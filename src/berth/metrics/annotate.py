"""`berth annotate`: write numeric annotations on nodes (a price, a simulated latency), list them.

Values come from a file (YAML or JSON map node -> number), one value for every selected node, or
random values in a range (the "node price" demo); they are written with a merge patch through
the official kubernetes client, so the command works on the embedded cluster and a real one. The
node-annotation metric source and the simulated exporter read these annotations back.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from berth.safeload import InputError, load_one

DEFAULT_KEY = "sim.berth.io/price"
MAX_FILE_BYTES = 1 << 20


class AnnotateError(Exception):
    """A problem the user can fix (bad file, unknown node, conflicting options)."""


def format_value(value: float) -> str:
    """The annotation text of a number: shortest round-trip form, no trailing `.0`."""
    if not math.isfinite(value):
        raise AnnotateError(f"{value} is not a finite number")
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def load_values_file(path: str | Path) -> dict[str, float]:
    """Node name -> number from a YAML or JSON mapping."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise AnnotateError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise AnnotateError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        data = load_one(raw)  # YAML is a superset of JSON
    except InputError as exc:
        raise AnnotateError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise AnnotateError(f"{path}: must be a non-empty map of node name to number")
    out: dict[str, float] = {}
    for node, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise AnnotateError(f"{path}: {node}: {value!r} is not a number")
        try:
            number = float(value)
        except ValueError:
            raise AnnotateError(f"{path}: {node}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise AnnotateError(f"{path}: {node}: {value!r} is not a finite number")
        out[str(node)] = number
    return out


def plan_values(
    *,
    nodes: Sequence[str],
    values: Mapping[str, float] | None = None,
    value: float | None = None,
    random_range: tuple[float, float] | None = None,
    seed: int | None = None,
    digits: int = 4,
) -> dict[str, str]:
    """Node -> annotation text for exactly one way of choosing values.

    `nodes` are the selected nodes that exist; with `values`, every node it names must be one of
    them (a typo must not silently annotate nothing)."""
    chosen = [x is not None for x in (values, value, random_range)]
    if sum(chosen) != 1:
        raise AnnotateError("give exactly one of --from-file, --value or --random LOW HIGH")
    if values is not None:
        unknown = sorted(set(values) - set(nodes))
        if unknown:
            raise AnnotateError(f"no such node(s): {', '.join(unknown)}")
        return {n: format_value(values[n]) for n in nodes if n in values}
    if value is not None:
        return {n: format_value(value) for n in nodes}
    assert random_range is not None
    low, high = random_range
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise AnnotateError("--random LOW HIGH needs finite numbers with LOW <= HIGH")
    rng = random.Random(seed)
    return {n: format_value(round(rng.uniform(low, high), digits)) for n in sorted(nodes)}


def numeric_annotations(
    nodes: Sequence[Mapping[str, Any]], *, key: str | None
) -> list[tuple[str, str, str]]:
    """(node, key, value) for annotation `key` (or every numeric annotation when None)."""
    rows = []
    for node in nodes:
        meta = node.get("metadata") or {}
        name = str(meta.get("name") or "")
        annotations = meta.get("annotations") or {}
        for k in sorted(annotations):
            text = annotations[k]
            if key is not None and k != key:
                continue
            if key is None and not _is_number(text):
                continue
            rows.append((name, k, str(text)))
        if key is not None and key not in annotations:
            rows.append((name, key, "<none>"))
    return sorted(rows)


def _is_number(text: Any) -> bool:
    try:
        return isinstance(text, str) and math.isfinite(float(text))
    except ValueError:
        return False


def format_rows(rows: Sequence[tuple[str, str, str]]) -> str:
    header = ("NODE", "ANNOTATION", "VALUE")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in table)


# ----- talking to the API server --------------------------------------------------------------
def core_api(kubeconfig: str | None) -> Any:
    """A CoreV1Api from `kubeconfig`, else in-cluster config, else the default loading rules."""
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            return client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))  # type: ignore[no-untyped-call]
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.CoreV1Api()
        except ConfigException:
            return client.CoreV1Api(config.new_client_from_config())  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, TypeError, yaml.YAMLError) as exc:
        where = f"{kubeconfig}: " if kubeconfig else ""
        reason = " ".join(str(exc).split())
        raise AnnotateError(f"{where}cannot load a kubeconfig: {reason}") from None


def _api_error(exc: Any) -> str:
    """`422 Unprocessable Entity: <the API server's Status message>`."""
    text = f"{exc.status} {exc.reason}"
    try:
        message = json.loads(exc.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{text}: {message}" if message else text


def _node_dicts(api: Any, selector: str | None) -> list[dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException

    try:
        resp = api.list_node(label_selector=selector or "", _preload_content=False)
        data = json.loads(resp.data)
    except ApiException as exc:
        raise AnnotateError(f"listing nodes failed: {_api_error(exc)}") from None
    items = data.get("items") or []
    return [i for i in items if isinstance(i, dict)]


def run_annotate(
    *,
    api: Any,
    nodes: Sequence[str] = (),
    key: str | None = None,
    from_file: str | None = None,
    value: float | None = None,
    random_range: tuple[float, float] | None = None,
    seed: int | None = None,
    remove: bool = False,
    list_only: bool = False,
    selector: str | None = None,
) -> str:
    """Do what `berth annotate` was asked and return what to print."""
    from kubernetes.client.exceptions import ApiException

    listed = _node_dicts(api, selector)
    names = [str((n.get("metadata") or {}).get("name")) for n in listed]
    if nodes:
        missing = sorted(set(nodes) - set(names))
        if missing:
            raise AnnotateError(f"no such node(s): {', '.join(missing)}")
        listed = [n for n, name in zip(listed, names, strict=True) if name in set(nodes)]
        names = [name for name in names if name in set(nodes)]
    if list_only:
        if from_file or value is not None or random_range or remove:
            raise AnnotateError("--list does not combine with values or --remove")
        return format_rows(numeric_annotations(listed, key=key))
    key = key or DEFAULT_KEY
    patch: dict[str, str | None]
    if remove:
        if from_file or value is not None or random_range:
            raise AnnotateError("--remove does not combine with values")
        patch = dict.fromkeys(names)
    else:
        values = load_values_file(from_file) if from_file else None
        if values is not None and not nodes:
            # a file names its nodes; only they are annotated
            unknown = sorted(set(values) - set(names))
            if unknown:
                raise AnnotateError(f"no such node(s): {', '.join(unknown)}")
            names = [n for n in names if n in values]
        patch = dict(
            plan_values(
                nodes=names, values=values, value=value, random_range=random_range, seed=seed
            )
        )
    for node, text in sorted(patch.items()):
        body = {"metadata": {"annotations": {key: text}}}
        try:
            api.patch_node(node, body)
        except ApiException as exc:
            raise AnnotateError(f"annotating node {node} failed: {_api_error(exc)}") from None
    if remove:
        return f"removed {key} from {len(patch)} node(s)"
    return format_rows(sorted((n, key, t or "") for n, t in patch.items()))


__all__ = [
    "DEFAULT_KEY",
    "AnnotateError",
    "core_api",
    "format_rows",
    "format_value",
    "load_values_file",
    "numeric_annotations",
    "plan_values",
    "run_annotate",
]
