"""The resource types the embedded cluster serves, and everything discovery needs to know of them.

One table drives routing, discovery, field-selector support and which subresources exist, so adding
a resource is one more row, not edits in five modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what it is called and what it supports."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # Field-selector labels beyond metadata.name / metadata.namespace, as upstream supports them.
    field_labels: tuple[str, ...] = ()
    # Whether a main-resource write keeps the old status (status is written via /status only).
    status_subresource: bool = False
    # Custom resources do not support strategic merge patch upstream (415).
    custom: bool = False
    categories: tuple[str, ...] = ()
    singular: str = field(default="")

    @property
    def key(self) -> str:
        """A unique store key: plural for the core group, plural.group otherwise."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def name_singular(self) -> str:
        return self.singular or self.kind.lower()


VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

_NEW_EVENT_FIELDS = (
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        ("ns",),
        ("status", "finalize"),
        ("status.phase",),
        status_subresource=True,
    ),
    ResourceType(
        "",
        "v1",
        "nodes",
        "Node",
        False,
        ("no",),
        ("status",),
        ("spec.unschedulable",),
        status_subresource=True,
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        ("po",),
        ("status", "binding", "eviction"),
        (
            "spec.nodeName",
            "spec.schedulerName",
            "status.phase",
            "spec.restartPolicy",
            "spec.serviceAccountName",
            "status.podIP",
            "status.nominatedNodeName",
            "spec.hostNetwork",
        ),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType("", "v1", "bindings", "Binding", True),
    ResourceType("", "v1", "events", "Event", True, ("ev",), (), _EVENT_FIELDS),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    ResourceType(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        True,
        ("rc",),
        ("status", "scale"),
        ("status.replicas",),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType(
        "",
        "v1",
        "services",
        "Service",
        True,
        ("svc",),
        ("status",),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        ("deploy",),
        ("status", "scale"),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        True,
        ("rs",),
        ("status", "scale"),
        ("status.replicas",),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        True,
        ("sts",),
        ("status", "scale"),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        True,
        ("ds",),
        ("status",),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    ResourceType(
        "batch",
        "v1",
        "jobs",
        "Job",
        True,
        (),
        ("status",),
        ("status.successful",),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, ("ev",), (), _NEW_EVENT_FIELDS),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        ("pdb",),
        ("status",),
        status_subresource=True,
    ),
    ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
    ResourceType(
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        False,
        ("pv",),
        ("status",),
        status_subresource=True,
    ),
    ResourceType(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        True,
        ("pvc",),
        ("status",),
        status_subresource=True,
    ),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    ResourceType("storage.k8s.io", "v1", "csinodes", "CSINode", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    # Dynamic Resource Allocation (dra.py: defaults, validation, update rules)
    ResourceType("resource.k8s.io", "v1", "deviceclasses", "DeviceClass", False),
    ResourceType(
        "resource.k8s.io",
        "v1",
        "resourceslices",
        "ResourceSlice",
        False,
        field_labels=("spec.nodeName", "spec.driver"),
    ),
    ResourceType(
        "resource.k8s.io",
        "v1",
        "resourceclaims",
        "ResourceClaim",
        True,
        subresources=("status",),
        status_subresource=True,
    ),
    ResourceType("resource.k8s.io", "v1", "resourceclaimtemplates", "ResourceClaimTemplate", True),
    ResourceType(
        "resource.k8s.io",
        "v1",
        "devicetaintrules",
        "DeviceTaintRule",
        False,
        subresources=("status",),
        status_subresource=True,
    ),
    # Called on creates by the embedded cluster's admission (webhooks.py).
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
    ),
    ResourceType(
        "scheduling.x-k8s.io",
        "v1alpha1",
        "podgroups",
        "PodGroup",
        True,
        ("pg", "pgs"),
        ("status",),
        status_subresource=True,
        custom=True,
    ),
)

BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES}

# Resources stored in the versioned store (bindings are a virtual create-only resource;
# events.k8s.io/v1 events are a view of the core/v1 events, see events.py).
STORED: tuple[ResourceType, ...] = tuple(
    r for r in RESOURCES if r.plural != "bindings" and r.key != "events.events.k8s.io"
)

PODS = BY_KEY["pods"]
NODES = BY_KEY["nodes"]
NAMESPACES = BY_KEY["namespaces"]
EVENTS = BY_KEY["events"]
NEW_EVENTS = BY_KEY["events.events.k8s.io"]
LEASES = BY_KEY["leases.coordination.k8s.io"]
PDBS = BY_KEY["poddisruptionbudgets.policy"]
PRIORITY_CLASSES = BY_KEY["priorityclasses.scheduling.k8s.io"]
BINDINGS = BY_KEY["bindings"]
PVS = BY_KEY["persistentvolumes"]
PVCS = BY_KEY["persistentvolumeclaims"]
STORAGE_CLASSES = BY_KEY["storageclasses.storage.k8s.io"]
CSINODES = BY_KEY["csinodes.storage.k8s.io"]
ROLES = BY_KEY["roles.rbac.authorization.k8s.io"]
ROLE_BINDINGS = BY_KEY["rolebindings.rbac.authorization.k8s.io"]
CLUSTER_ROLES = BY_KEY["clusterroles.rbac.authorization.k8s.io"]
CLUSTER_ROLE_BINDINGS = BY_KEY["clusterrolebindings.rbac.authorization.k8s.io"]
DEVICE_CLASSES = BY_KEY["deviceclasses.resource.k8s.io"]
RESOURCE_SLICES = BY_KEY["resourceslices.resource.k8s.io"]
RESOURCE_CLAIMS = BY_KEY["resourceclaims.resource.k8s.io"]
RESOURCE_CLAIM_TEMPLATES = BY_KEY["resourceclaimtemplates.resource.k8s.io"]
DEVICE_TAINT_RULES = BY_KEY["devicetaintrules.resource.k8s.io"]
REPLICATION_CONTROLLERS = BY_KEY["replicationcontrollers"]
SERVICES = BY_KEY["services"]
DEPLOYMENTS = BY_KEY["deployments.apps"]
REPLICA_SETS = BY_KEY["replicasets.apps"]
STATEFUL_SETS = BY_KEY["statefulsets.apps"]
DAEMON_SETS = BY_KEY["daemonsets.apps"]
CONTROLLER_REVISIONS = BY_KEY["controllerrevisions.apps"]
JOBS = BY_KEY["jobs.batch"]
ENDPOINT_SLICES = BY_KEY["endpointslices.discovery.k8s.io"]
# Resources with a /scale subresource (autoscaling/v1 Scale, spec.replicas of the object).
SCALABLE = frozenset(r.key for r in RESOURCES if "scale" in r.subresources)
RBAC_KEYS = frozenset({ROLES.key, ROLE_BINDINGS.key, CLUSTER_ROLES.key, CLUSTER_ROLE_BINDINGS.key})


def groups() -> list[tuple[str, str]]:
    """The (group, version) pairs served under /apis, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        gv = (r.group, r.version)
        if r.group and gv not in seen:
            seen.append(gv)
    return seen
