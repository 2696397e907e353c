"""In-tree volumes as the CSI volumes they migrated to: the driver and volume handle that
NodeVolumeLimits counts against a CSINode's attach limit.

Upstream: k8s.io/csi-translation-lib (plugins/aws_ebs.go, gce_pd.go, azure_disk.go,
openstack_cinder.go) and the scheduler's isCSIMigrationOn. Only the four plugins whose migration
is GA and always on are translated: AWS EBS, GCE PD, Azure Disk and Cinder. The other migratable
plugins (Azure File, vSphere, Portworx, RBD) are recognised and, as upstream does while their
migration is off for the node, not counted.
"""

from __future__ import annotations

import re
from typing import Any

AWS_EBS_PLUGIN = "kubernetes.io/aws-ebs"
GCE_PD_PLUGIN = "kubernetes.io/gce-pd"
AZURE_DISK_PLUGIN = "kubernetes.io/azure-disk"
CINDER_PLUGIN = "kubernetes.io/cinder"
AWS_EBS_DRIVER = "ebs.csi.aws.com"
GCE_PD_DRIVER = "pd.csi.storage.gke.io"
AZURE_DISK_DRIVER = "disk.csi.azure.com"
CINDER_DRIVER = "cinder.csi.openstack.org"

# in-tree plugin -> CSI driver, for the plugins whose migration is on (isCSIMigrationOn)
MIGRATED: dict[str, str] = {
    AWS_EBS_PLUGIN: AWS_EBS_DRIVER,
    GCE_PD_PLUGIN: GCE_PD_DRIVER,
    AZURE_DISK_PLUGIN: AZURE_DISK_DRIVER,
    CINDER_PLUGIN: CINDER_DRIVER,
}
# csi-translation-lib's other plugins (IsMigratableIntreePluginByName), counted by nobody
NOT_MIGRATED = frozenset(
    {
        "kubernetes.io/azure-file",
        "kubernetes.io/vsphere-volume",
        "kubernetes.io/portworx-volume",
        "kubernetes.io/rbd",
    }
)
UNSPECIFIED = "UNSPECIFIED"
_AWS_VOLUME = re.compile(r"^vol-[^/]*$")
_BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
_ZONE = "topology.kubernetes.io/zone"

Attach = tuple[str, str]  # (CSI driver, volume handle)


class TranslationError(ValueError):
    """An in-tree volume csi-translation-lib refuses to translate."""


def ebs_volume_id(kubernetes_id: str) -> str:
    """KubernetesVolumeIDToEBSVolumeID: `aws://<zone>/vol-x`, `aws:///vol-x` or `vol-x`."""
    if not kubernetes_id.startswith("aws://"):
        return kubernetes_id
    aws_id = kubernetes_id[len("aws://") :]
    # url.Parse: the host is up to the first "/", the rest is the path
    slash = aws_id.find("/")
    path = aws_id[slash:] if slash >= 0 else ""
    aws_id = path.strip("/")
    if not _AWS_VOLUME.match(aws_id):
        raise TranslationError(f"Invalid format for AWS volume ({kubernetes_id})")
    return aws_id


def _gce_region(zones: list[str]) -> str:
    regions = set()
    for zone in zones:
        parts = zone.split("-")
        if len(parts) != 3:
            raise TranslationError(f"zone in unexpected format: {zone}")
        regions.add("-".join(parts[:2]))
    if len(regions) != 1:
        raise TranslationError(f"multiple or no regions gotten from zones: {sorted(regions)}")
    return regions.pop()


def _source(src: Any) -> dict[str, Any] | None:
    return src if isinstance(src, dict) else None


def inline_attach(volume: dict[str, Any]) -> Attach | None:
    """TranslateInTreeInlineVolumeToCSI for a pod's inline volume, or None when it is not one of
    the translated kinds. Raises TranslationError where upstream's translation fails."""
    if (src := _source(volume.get("awsElasticBlockStore"))) is not None:
        return AWS_EBS_DRIVER, ebs_volume_id(str(src.get("volumeID") or ""))
    if (src := _source(volume.get("gcePersistentDisk"))) is not None:
        pd = str(src.get("pdName") or "")
        return GCE_PD_DRIVER, f"projects/{UNSPECIFIED}/zones/{UNSPECIFIED}/disks/{pd}"
    if (src := _source(volume.get("azureDisk"))) is not None:
        return AZURE_DISK_DRIVER, str(src.get("diskURI") or "")
    if (src := _source(volume.get("cinder"))) is not None:
        return CINDER_DRIVER, str(src.get("volumeID") or "")
    return None


def pv_attach(spec: dict[str, Any], labels: dict[str, str]) -> Attach | None:
    """A PV's `spec.csi` (driver, volumeHandle), or its in-tree source translated
    (TranslateInTreePVToCSI); None when NodeVolumeLimits would not count it."""
    csi = _source(spec.get("csi"))
    if csi is not None:
        return str(csi.get("driver") or ""), str(csi.get("volumeHandle") or "")
    try:
        if (src := _source(spec.get("awsElasticBlockStore"))) is not None:
            return AWS_EBS_DRIVER, ebs_volume_id(str(src.get("volumeID") or ""))
        if (src := _source(spec.get("gcePersistentDisk"))) is not None:
            pd = str(src.get("pdName") or "")
            zones = (labels.get(_BETA_ZONE) or labels.get(_ZONE) or "").split("__")
            if len(zones) == 1 and zones[0]:
                return GCE_PD_DRIVER, f"projects/{UNSPECIFIED}/zones/{zones[0]}/disks/{pd}"
            if len(zones) > 1:
                region = _gce_region(zones)
                return GCE_PD_DRIVER, f"projects/{UNSPECIFIED}/regions/{region}/disks/{pd}"
            return GCE_PD_DRIVER, f"projects/{UNSPECIFIED}/zones/{UNSPECIFIED}/disks/{pd}"
    except TranslationError:
        return None  # upstream logs and does not count the volume
    if (src := _source(spec.get("azureDisk"))) is not None:
        return AZURE_DISK_DRIVER, str(src.get("diskURI") or "")
    if (src := _source(spec.get("cinder"))) is not None:
        return CINDER_DRIVER, str(src.get("volumeID") or "")
    return None


def provisioner_driver(provisioner: str) -> str:
    """The CSI driver a StorageClass's provisioner attaches with ("" when not counted):
    a migrated in-tree provisioner's driver, another in-tree one's nothing, else itself."""
    if provisioner in MIGRATED:
        return MIGRATED[provisioner]
    if provisioner in NOT_MIGRATED:
        return ""
    return provisioner
