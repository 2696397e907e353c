"""Every manifest Berth ships, rendered as a cluster receives it (each kustomize variant by the
real kubectl, the Helm chart by the real helm with each option set), is a valid Kubernetes 1.37
object under the official schemas, strictly (the ServiceMonitor under its CRD's own schema); the
configurations they carry load; every pod runs non-root on a read-only root filesystem with the
flags `berth` has; selectors, Secrets and Leases agree across objects; and the chart renders the
same objects as the kustomize variant it stands for."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.cli import main
from berth.config import parse_config
from tests.deploy.render import (
    CHART,
    DEPLOY,
    HELM_OPTIONS,
    KUSTOMIZATIONS,
    Doc,
    documents,
    gotool,
    helm,
    kubectl,
    kustomize,
    run,
    set_flags,
)
from tests.deploy.schemas import validate

# The first test that needs helm or controller-gen builds it (tools/build: minutes when cold).
pytestmark = pytest.mark.timeout(1500)

RENDERINGS = [f"kustomize:{k or '.'}" for k in KUSTOMIZATIONS] + [f"helm:{h}" for h in HELM_OPTIONS]
POD_KINDS = ("Deployment", "DaemonSet")


def rendered(name: str) -> list[Doc]:
    source, variant = name.split(":")
    if source == "helm":
        return helm(variant)
    return kustomize("" if variant == "." else variant)


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str) -> Doc:
    (doc,) = by_kind(docs, kind)
    return doc


def configs(docs: list[Doc]) -> list[dict[str, Any]]:
    return [yaml.safe_load(cm["data"]["config.yaml"]) for cm in by_kind(docs, "ConfigMap")]


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_object_is_valid_strictly(name: str) -> None:
    docs = rendered(name)
    assert docs
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("name", RENDERINGS)
def test_the_configuration_loads(name: str) -> None:
    loaded = [parse_config(cfg) for cfg in configs(rendered(name))]
    assert loaded and all(config.profiles for config in loaded)


@pytest.mark.parametrize("name", RENDERINGS)
def test_pods_are_non_root_on_a_read_only_root_fs_with_berths_flags(name: str) -> None:
    docs = rendered(name)
    workloads = [d for d in docs if d["kind"] in POD_KINDS]
    assert workloads
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(c)
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            command, *args = c["args"]
            workload_name = workload["metadata"]["name"]
            want = {"DaemonSet": "extender"}.get(workload["kind"]) or (
                "webhook"
                if workload_name.endswith("-webhook")
                else "rebalance"
                if workload_name.endswith("-rebalance")
                else "run"
            )
            assert command == want
            sub = main.commands[command]
            flags = {o for p in sub.params for o in [*p.opts, *p.secondary_opts]}
            assert {a for a in args if a.startswith("--")} <= flags
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert args[args.index("--config") + 1].rsplit("/", 1)[0] in mounts
            # $(VAR) in args are the container's own variables
            env = {e["name"] for e in c.get("env") or []}
            assert set(re.findall(r"\$\((\w+)\)", " ".join(args))) <= env


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in RENDERINGS
        if "extender" not in n
        and n != "kustomize:rebalance"
        and not n.endswith(("minimal", "webhook-custom", "rebalance-custom"))
    ],
)
def test_the_scheduler_is_two_replicas_behind_a_pdb_service_and_network_policy(name: str) -> None:
    docs = [d for d in rendered(name) if not _webhook_part(d) and not _rebalance_part(d)]
    deployment = one(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    selects = lambda selector: selector.items() <= pod_labels.items()  # noqa: E731
    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    service = one(docs, "Service")
    assert selects(service["spec"]["selector"])
    policy = one(docs, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"])
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    # leader election: the Lease the configuration names is the one RBAC lets Berth renew
    (cfg,) = configs(docs)
    assert cfg["leaderElection"]["leaderElect"] is True
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == cfg["leaderElection"]["resourceNamespace"]
    (named,) = [r for r in role["rules"] if "resourceNames" in r]
    assert named["resourceNames"] == [cfg["leaderElection"]["resourceName"]]
    # /metrics over TLS with the certificate of the mounted Secret
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert "--tls-cert-file" in container["args"]
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    (tls,) = [v for v in spec["volumes"] if "secret" in v]
    for monitor in by_kind(docs, "ServiceMonitor"):
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["scheme"] == "https"
        assert endpoint["tlsConfig"]["ca"]["secret"]["name"] == tls["secret"]["secretName"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items()
        )
        assert endpoint["port"] == service["spec"]["ports"][0]["name"]
        assert endpoint["tlsConfig"]["serverName"] == (
            f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
        )


def test_with_prometheus_scores_by_prometheus_and_may_reach_it() -> None:
    for docs in (kustomize("with-prometheus"), helm("with-prometheus")):
        (cfg,) = configs(docs)
        (source,) = cfg["metricSources"]
        assert source["type"] == "prometheus"
        port = int(source["url"].rsplit(":", 1)[1])
        egress = one(docs, "NetworkPolicy")["spec"]["egress"]
        assert any(p["port"] == port for rule in egress for p in rule["ports"])
        assert by_kind(docs, "ServiceMonitor")


def test_the_extender_runs_beside_kube_scheduler_on_loopback() -> None:
    shipped = yaml.safe_load((DEPLOY / "extender" / "kube-scheduler-config.yaml").read_text())
    (entry,) = shipped["extenders"]
    for docs in (kustomize("extender"), helm("extender")):
        ds = one(docs, "DaemonSet")
        spec = ds["spec"]["template"]["spec"]
        assert spec["hostNetwork"] is True
        assert "node-role.kubernetes.io/control-plane" in spec["nodeSelector"]
        (c,) = spec["containers"]
        address = c["args"][c["args"].index("--bind-address") + 1]
        prefix = c["args"][c["args"].index("--url-prefix") + 1]
        assert entry["urlPrefix"] == f"http://{address}{prefix}"
        assert address.startswith("127.0.0.1:")
        assert c["livenessProbe"]["httpGet"]["host"] == "127.0.0.1"
        assert not by_kind(docs, "Service") and not by_kind(docs, "Role")
    # the chart hands kube-scheduler the same configuration as the shipped file
    cm = one(helm("extender"), "ConfigMap")
    assert yaml.safe_load(cm["data"]["kube-scheduler-config.yaml"]) == shipped


def _rebalance_part(doc: Doc) -> bool:
    return "-rebalance" in doc["metadata"]["name"]


def _webhook_part(doc: Doc) -> bool:
    return doc["metadata"]["name"].endswith("-webhook") or doc["kind"] == (
        "MutatingWebhookConfiguration"
    )


WEBHOOK_RENDERINGS = ["kustomize:with-webhook", "helm:with-webhook", "helm:webhook-custom"]


@pytest.mark.parametrize("name", WEBHOOK_RENDERINGS)
def test_the_webhook_falls_back_and_can_judge_the_leader(name: str) -> None:
    from berth.webhook.registration import webhook_configuration

    docs = rendered(name)
    (mwc,) = by_kind(docs, "MutatingWebhookConfiguration")
    (hook,) = mwc["webhooks"]
    assert hook["failurePolicy"] == "Ignore" and hook["sideEffects"] == "None"
    assert 1 <= hook["timeoutSeconds"] <= 5
    # the same webhook `berth webhook --print-webhook-configuration` prints, through a Service
    printed = webhook_configuration(url="https://x/mutate", ca_bundle=None)["webhooks"][0]
    printed.pop("clientConfig")
    printed["timeoutSeconds"] = hook["timeoutSeconds"]
    assert {k: v for k, v in hook.items() if k != "clientConfig"} == printed
    ref = hook["clientConfig"]["service"]
    webhook = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == ref["name"]
    )
    service = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == ref["name"]
    )
    pod = webhook["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    # its own pods are never sent to it
    assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "berth"
    (port,) = service["spec"]["ports"]
    assert (ref["port"], ref["path"]) == (port["port"], "/mutate")
    (container,) = pod["spec"]["containers"]
    (cport,) = container["ports"]
    assert port["targetPort"] == cport["name"]
    address = container["args"][container["args"].index("--bind-address") + 1]
    assert address.endswith(f":{cport['containerPort']}")
    assert "caBundle" in hook["clientConfig"] or mwc["metadata"]["annotations"][
        "cert-manager.io/inject-ca-from"
    ].endswith(
        "/"
        + next(
            v["secret"]["secretName"] for v in pod["spec"]["volumes"] if v["name"] == "webhook-tls"
        )
    )
    # the configuration: the leader's /readyz by its identity, over TLS checked against the
    # CA of Berth's serving Secret, for the name of Berth's Service
    (cfg,) = configs(docs)
    config = parse_config(cfg).model
    assert config.webhook.readyzURL == "https://{holderIdentity}/readyz"
    berth = next(d for d in docs if d["kind"] == "Deployment" and d is not webhook)
    (bc,) = berth["spec"]["template"]["spec"]["containers"]
    identity = bc["args"][bc["args"].index("--identity") + 1]
    bind = bc["args"][bc["args"].index("--bind-address") + 1]
    assert identity == "$(POD_IP):" + bind.rsplit(":", 1)[1]
    (pod_ip,) = bc["env"]
    assert pod_ip == {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    berth_service = next(d for d in docs if d["kind"] == "Service" and d is not service)
    meta = berth_service["metadata"]
    assert config.webhook.readyzServerName == f"{meta['name']}.{meta['namespace']}.svc"
    ca = next(v for v in pod["spec"]["volumes"] if v["name"] == "berth-ca")
    berth_tls = next(v for v in berth["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    assert ca["secret"]["secretName"] == berth_tls["secret"]["secretName"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "berth-ca")
    assert config.webhook.readyzCAFile == f"{mount['mountPath']}/ca.crt"
    # it may read the one Lease the configuration names, and nothing else
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == ref["name"])
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [config.leaderElection.resourceName],
            "verbs": ["get"],
        }
    ]
    assert role["metadata"]["namespace"] == config.leaderElection.resourceNamespace
    # and Berth's NetworkPolicy lets it reach the leader's /readyz (when there is one)
    policies = {d["metadata"]["name"]: d for d in by_kind(docs, "NetworkPolicy")}
    if policies:
        ingress = policies[berth["metadata"]["name"]]["spec"]["ingress"]
        assert any(
            "podSelector" in f
            and f["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
            for rule in ingress
            for f in rule.get("from", [])
        )


# --- the rebalancer: `berth rebalance --loop`, its own account, evictions and its Lease -------

REBALANCE_RENDERINGS = ["kustomize:rebalance", "helm:rebalance", "helm:rebalance-custom"]
# what the rebalancer may do beyond the shared reads, and all it may do
REBALANCE_GRANTS = {
    ("", "pods/eviction", "create", ()),
    ("events.k8s.io", "events", "create", ()),
    ("events.k8s.io", "events", "patch", ()),
    ("coordination.k8s.io", "leases", "create", ()),
}


def granted_to(docs: list[Doc], namespace: str, account: str) -> dict[str, list[dict[str, Any]]]:
    """The rules of every role bound to the ServiceAccount, by role name."""
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("ClusterRole", "Role")}
    out = {}
    for b in docs:
        if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
        if subject in b["subjects"]:
            out[b["roleRef"]["name"]] = roles[b["roleRef"]["name"]]["rules"]
    return out


@pytest.mark.parametrize("name", REBALANCE_RENDERINGS)
def test_the_rebalancer_loops_leader_elected_with_its_own_least_privilege(name: str) -> None:
    from berth.engine import Engine
    from berth.rebalance.planner import settings_of

    docs = rendered(name)
    ours = [d for d in docs if _rebalance_part(d)]
    deployment = one(ours, "Deployment")
    namespace = deployment["metadata"]["namespace"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = container["args"]
    assert args[0] == "rebalance" and "--loop" in args
    assert ("--apply" in args) != ("--dry-run" in args)
    assert deployment["spec"]["replicas"] >= 1
    # its configuration: a rebalance section on metrics the profile scores by, leader elected
    (cm,) = by_kind(ours, "ConfigMap")
    (volume,) = [v for v in spec["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    config = parse_config(cfg)
    settings_of(Engine(config=config, seed=0))  # its metrics are the profile's MetricScore's
    lease = config.model.rebalance.leaderElection
    assert lease.leaderElect and lease.resourceNamespace == namespace
    # it decides with the scheduler's own profile and metrics (no ping-pong)
    scheduler = configs(kustomize("with-prometheus") if name.startswith("kustomize") else docs)
    scheduler_cfg = next(c for c in scheduler if "rebalance" not in c)
    assert cfg["profiles"] == scheduler_cfg["profiles"]
    assert cfg["metricSources"] == scheduler_cfg["metricSources"]
    # its own account: the shared read role, evictions, events and its own Lease; never more
    account = spec["serviceAccountName"]
    assert account == deployment["metadata"]["name"]
    grants = granted_to(docs, namespace, account)
    read = next(r for r in grants if r.endswith("-read"))
    assert (
        grants.pop(read)
        == one([d for d in docs if d["metadata"]["name"] == read], "ClusterRole")["rules"]
    )
    extra = {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in (r for rs in grants.values() for r in rs)
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    own_lease = {
        ("coordination.k8s.io", "leases", verb, (lease.resourceName,)) for verb in ("get", "update")
    }
    assert extra == REBALANCE_GRANTS | own_lease
    role = one(ours, "Role")
    assert role["metadata"]["namespace"] == lease.resourceNamespace
    # probes and metrics on the port it binds; the NetworkPolicy (when on) selects its pods
    (port,) = container["ports"]
    assert args[args.index("--bind-address") + 1] == f"0.0.0.0:{port['containerPort']}"
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    for policy in by_kind(ours, "NetworkPolicy"):
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        (ingress,) = policy["spec"]["ingress"]
        assert ingress["ports"] == [{"port": port["name"], "protocol": "TCP"}]
        prometheus = int(cfg["metricSources"][0]["url"].rsplit(":", 1)[1])
        egress = policy["spec"]["egress"]
        assert any(p["port"] == prometheus for rule in egress for p in rule["ports"])
    # the scheduler's selector does not take the rebalancer's pods (nor the other way round)
    for other in by_kind(docs, "Deployment"):
        if other is not deployment:
            assert not other["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_chart_refuses_a_rebalancer_without_metrics() -> None:
    import subprocess

    done = subprocess.run(
        [gotool("helm"), "template", "berth", CHART, "--set", "rebalance.enabled=true"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "rebalance.enabled needs metric sources" in done.stderr, done.stderr


# --- the chart and the kustomize variants are the same deployment ---------------------------

_SUFFIX = re.compile(r"-[a-z0-9]{10}$")  # kustomize's ConfigMap name hash


def normalised(docs: list[Doc]) -> dict[tuple[str, str], Any]:
    out = {}
    for doc in docs:
        doc = yaml.safe_load(yaml.safe_dump(doc))
        meta = doc["metadata"]
        meta.pop("labels", None)
        meta.pop("annotations", None)
        if doc["kind"] == "ConfigMap":
            meta["name"] = _SUFFIX.sub("", meta["name"])
            doc["data"] = {"config.yaml": yaml.safe_load(doc["data"]["config.yaml"])}
        if doc["kind"] in POD_KINDS:
            doc["spec"]["template"]["metadata"].pop("annotations", None)
            for v in doc["spec"]["template"]["spec"]["volumes"]:
                if "configMap" in v:
                    v["configMap"]["name"] = _SUFFIX.sub("", v["configMap"]["name"])
        if doc["kind"] in ("ClusterRole", "Role"):
            doc["rules"] = sorted(doc["rules"], key=repr)
        out[(doc["kind"], meta["name"])] = doc
    return out


@pytest.mark.parametrize(
    "variant", ["scheduler", "with-prometheus", "with-webhook", "extender", "rebalance"]
)
def test_the_chart_renders_what_kustomize_renders(variant: str) -> None:
    chart = helm(variant)
    if variant == "rebalance":  # the chart's release has the scheduler too; the reads are shared
        shared = ("ClusterRole", "berth-read")
        chart = [
            d for d in chart if _rebalance_part(d) or (d["kind"], d["metadata"]["name"]) == shared
        ]
    ours, theirs = normalised(kustomize(variant)), normalised(chart)
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert ours[key] == theirs[key], key


# --- RBAC: what `berth run` calls, nothing broader -------------------------------------------


def rules(docs: list[Doc]) -> list[dict[str, Any]]:
    return [r for d in docs if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]


def allowed(docs: list[Doc], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
        for r in rules(docs)
    )


CALLS = [
    ("", "pods", "watch"),
    ("", "nodes", "list"),
    ("", "namespaces", "watch"),
    ("", "pods/binding", "create"),
    ("", "pods/status", "patch"),
    ("", "pods", "delete"),  # preemption victims
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),  # series of repeated events
    ("coordination.k8s.io", "leases", "update"),
    ("", "persistentvolumeclaims", "watch"),
    ("", "persistentvolumes", "watch"),
    ("storage.k8s.io", "storageclasses", "watch"),
    ("storage.k8s.io", "csinodes", "watch"),
    ("", "persistentvolumeclaims", "patch"),  # selected-node annotation
    ("", "persistentvolumes", "update"),  # claimRef of a statically bound PV
    ("resource.k8s.io", "resourceslices", "watch"),
    ("resource.k8s.io", "deviceclasses", "watch"),
    ("resource.k8s.io", "resourceclaims", "watch"),
    ("resource.k8s.io", "resourceclaimtemplates", "watch"),
    ("resource.k8s.io", "devicetaintrules", "watch"),
    ("resource.k8s.io", "resourceclaims", "update"),  # the delete-protection finalizer
    ("resource.k8s.io", "resourceclaims", "create"),  # the special claim of extended resources
    ("resource.k8s.io", "resourceclaims", "delete"),  # ... deleted by Unreserve or PostFilter
    ("resource.k8s.io", "resourceclaims/status", "update"),  # allocation, reservedFor
    ("resource.k8s.io", "resourceclaims/status", "patch"),  # Unreserve
    ("resource.k8s.io", "resourceclaims/binding", "update"),  # granular status authorization
    ("resource.k8s.io", "resourceclaims/binding", "patch"),
]


@pytest.mark.parametrize("name", ["kustomize:scheduler", "helm:scheduler"])
@pytest.mark.parametrize(("group", "resource", "verb"), CALLS)
def test_rbac_grants_what_berth_run_calls(name: str, group: str, resource: str, verb: str) -> None:
    assert allowed(rendered(name), group, resource, verb)


@pytest.mark.parametrize("name", RENDERINGS)
def test_rbac_is_least_privilege(name: str) -> None:
    docs = rendered(name)
    for r in rules(docs):
        assert "*" not in r["verbs"] and "*" not in r["resources"] and "*" not in r["apiGroups"]
        assert "secrets" not in r["resources"]
        assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(r["verbs"])
        if "delete" in r["verbs"]:
            # The two exceptions, each in a rule of its own that grants nothing else (no other
            # verb, no other resource, no subresource): preemption deletes victim pods, and
            # DynamicResources deletes the special claim it made for a pod's extended resources.
            assert r in (
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
                {
                    "apiGroups": ["resource.k8s.io"],
                    "resources": ["resourceclaims"],
                    "verbs": ["delete"],
                },
            )
    for group, resource, verb in [
        ("", "nodes", "update"),
        ("", "nodes", "delete"),
        ("", "pods/binding", "delete"),
        ("", "pods", "create"),
        # what Berth never calls (checked by enforcing the manifest: tests/live/test_rbac.py)
        ("", "pods/status", "update"),
        ("", "persistentvolumeclaims", "update"),
        ("", "persistentvolumes", "patch"),
        ("", "events", "create"),  # core/v1: Berth writes events.k8s.io/v1
        ("", "events", "patch"),
        ("events.k8s.io", "events", "update"),
        ("resource.k8s.io", "resourceclaims", "patch"),
        ("resource.k8s.io", "resourceslices", "update"),
    ]:
        assert not allowed(docs, group, resource, verb), (group, resource, verb)
    if "extender" in name:  # reads only: kube-scheduler binds
        assert {v for r in rules(docs) for v in r["verbs"]} == {"get", "list", "watch"}


def test_the_install_guides_overlay_points_the_manifests_at_your_image(tmp_path: Path) -> None:
    text = (DEPLOY.parent / "docs" / "install.md").read_text()
    (block,) = re.findall(r"\n( *)```yaml\n(\1# my-berth/kustomization.yaml\n.*?)\1```", text, re.S)
    block = textwrap.dedent(block[1])
    (tmp_path / "deploy").symlink_to(DEPLOY)
    overlay = tmp_path / "my-berth"  # beside deploy/, as the guide has it
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(block)
    docs = documents(run(kubectl(), "kustomize", overlay))
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/berth:0.1.0"
    ours, shipped = normalised(docs), normalised(kustomize("scheduler"))
    (ours_c,) = ours[("Deployment", "berth")]["spec"]["template"]["spec"]["containers"]
    ours_c["image"] = "berth:0.1.0"  # the one difference
    assert ours == shipped


def test_the_install_guides_rebalance_overlay_and_its_dry_run(tmp_path: Path) -> None:
    text = (DEPLOY.parent / "docs" / "install.md").read_text()
    section = text[text.index("## The rebalancer") : text.index("## Beside kube-scheduler")]
    overlay_text, dry_run = (
        textwrap.dedent(b)
        for b in re.findall(r"```yaml\n(# my-berth-rebalance/.*?)```", section, re.S)
    )
    (tmp_path / "deploy").symlink_to(DEPLOY)
    overlay = tmp_path / "my-berth-rebalance"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(overlay_text)
    docs = documents(run(kubectl(), "kustomize", overlay))
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/berth:0.1.0"
    assert "--apply" in container["args"]
    ours, shipped = normalised(docs), normalised(kustomize("rebalance"))
    (ours_c,) = ours[("Deployment", "berth-rebalance")]["spec"]["template"]["spec"]["containers"]
    ours_c["image"] = "berth:0.1.0"  # the one difference
    assert ours == shipped
    # the dry run: the same with --dry-run for --apply
    (overlay / "kustomization.yaml").write_text(overlay_text + dry_run)
    (container,) = one(documents(run(kubectl(), "kustomize", overlay)), "Deployment")["spec"][
        "template"
    ]["spec"]["containers"]
    assert "--apply" not in container["args"] and "--dry-run" in container["args"]
    # the guide's helm install renders the chart's rebalancer, acting
    (command,) = re.findall(r"```sh\n(helm install berth .*?)```", section, re.S)
    flags = re.findall(r"--set (\S+)", command)
    chart = documents(
        run(gotool("helm"), "template", "berth", CHART, "-n", "kube-system", *set_flags(flags))
    )
    rebalancer = next(
        d for d in chart if d["metadata"]["name"] == "berth-rebalance" and d["kind"] == "Deployment"
    )
    (c,) = rebalancer["spec"]["template"]["spec"]["containers"]
    assert c["image"].startswith("registry.example.com/berth:") and "--apply" in c["args"]
