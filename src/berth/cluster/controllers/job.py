"""Jobs (upstream pkg/controller/job): up to `parallelism` active pods until `completions`
succeeded (NonIndexed and Indexed), a Failed condition once more than `backoffLimit` pods
failed, suspension, and the status (`active`, `ready`, `succeeded`, `failed`, `startTime`,
`completionTime`, SuccessCriteriaMet/Complete conditions) `kubectl wait` and `describe` read.

Pods finish when the simulated kubelet says so (it completes pods owned by Jobs).
"""

from __future__ import annotations

from typing import Any

from berth.cluster.admission import now
from berth.cluster.controllers.base import (
    Controller,
    Key,
    condition,
    is_active,
    is_ready,
    owner_reference,
    set_condition,
)
from berth.cluster.controllers.replicaset import pod_from_template
from berth.cluster.errors import ApiError
from berth.cluster.resources import JOBS, PODS
from berth.cluster.store import Change

JSON = dict[str, Any]
INDEX = "batch.kubernetes.io/job-completion-index"


def _phase(pod: JSON) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


class JobController(Controller):
    name = "job-controller"
    rt = JOBS
    watched = (PODS,)

    def keys(self, change: Change) -> list[Key]:
        if change.key == PODS.key:
            return list(self.owner_key(change))
        return list(self.own_key(change))

    def sync(self, job: JSON) -> int:
        meta, spec = job["metadata"], job.get("spec") or {}
        status = dict(job.get("status") or {})
        if meta.get("deletionTimestamp"):
            return 0
        finished = any(
            (c.get("type"), c.get("status")) in (("Complete", "True"), ("Failed", "True"))
            for c in status.get("conditions") or []
        )
        pods = self.owned(PODS, job)
        active = [p for p in pods if is_active(p)]
        succeeded = [p for p in pods if _phase(p) == "Succeeded"]
        failed = [p for p in pods if _phase(p) == "Failed"]
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        stamp = now()
        conditions = list(status.get("conditions") or [])
        if not finished:
            if not spec.get("suspend"):
                status.setdefault("startTime", stamp)
            done_indexes = {_index(p) for p in succeeded} if indexed else set()
            n_succeeded = len(done_indexes) if indexed else len(succeeded)
            if len(failed) > int(spec.get("backoffLimit", 6)):
                self._delete_all(job, active)
                active = []
                message = "Job has reached the specified backoff limit"
                for kind in ("FailureTarget", "Failed"):
                    conditions = set_condition(
                        conditions,
                        {
                            "type": kind,
                            "status": "True",
                            "lastProbeTime": stamp,
                            "lastTransitionTime": stamp,
                            "reason": "BackoffLimitExceeded",
                            "message": message,
                        },
                    )
            elif (completions is not None and n_succeeded >= int(completions)) or (
                completions is None and succeeded and not active
            ):
                self._delete_all(job, active)
                active = []
                for kind in ("SuccessCriteriaMet", "Complete"):
                    conditions = set_condition(
                        conditions,
                        {
                            "type": kind,
                            "status": "True",
                            "lastProbeTime": stamp,
                            "lastTransitionTime": stamp,
                            "reason": "CompletionsReached",
                            "message": "Reached expected number of succeeded pods",
                        },
                    )
                status["completionTime"] = stamp
            elif spec.get("suspend"):
                self._delete_all(job, active)
                active = []
                conditions = set_condition(
                    conditions,
                    {
                        "type": "Suspended",
                        "status": "True",
                        "lastProbeTime": stamp,
                        "lastTransitionTime": stamp,
                        "reason": "JobSuspended",
                        "message": "Job suspended",
                    },
                )
            else:
                if condition(job, "Suspended") is not None:
                    conditions = set_condition(
                        conditions,
                        {
                            "type": "Suspended",
                            "status": "False",
                            "lastProbeTime": stamp,
                            "lastTransitionTime": stamp,
                            "reason": "JobResumed",
                            "message": "Job resumed",
                        },
                    )
                active += self._create(job, active, done_indexes, n_succeeded, parallelism)
            if indexed:
                status["completedIndexes"] = _ranges(done_indexes)
        status.update(
            active=len(active),
            ready=sum(1 for p in active if is_ready(p)),
            succeeded=len(succeeded),
            failed=len(failed),
            terminating=0,
            uncountedTerminatedPods={},
        )
        if conditions:
            status["conditions"] = conditions
        for key in ("active", "succeeded", "failed"):  # omitempty
            if not status[key]:
                del status[key]
        return self.write_status(JOBS, job, status)

    def _create(
        self, job: JSON, active: list[JSON], done: set[int], succeeded: int, parallelism: int
    ) -> list[JSON]:
        meta, spec = job["metadata"], job.get("spec") or {}
        completions = spec.get("completions")
        want = parallelism
        if completions is not None:
            want = min(parallelism, int(completions) - succeeded)
        missing = want - len(active)
        if missing <= 0:
            return []
        template = spec.get("template") or {}
        ref = owner_reference(JOBS, job)
        indexes: list[int | None] = [None] * missing
        if spec.get("completionMode") == "Indexed":
            busy = done | {_index(p) for p in active}
            free = [i for i in range(int(completions or 0)) if i not in busy]
            indexes = list(free[:missing])
        out = []
        for index in indexes:
            body = pod_from_template(
                template,
                owner=ref,
                namespace=meta["namespace"],
                generate_name=f"{meta['name']}-" if index is None else f"{meta['name']}-{index}-",
            )
            if index is not None:
                pmeta = body["metadata"]
                pmeta["annotations"] = {**(pmeta.get("annotations") or {}), INDEX: str(index)}
                pmeta["labels"] = {**(pmeta.get("labels") or {}), INDEX: str(index)}
                body["spec"] = {**(body["spec"] or {}), "hostname": f"{meta['name']}-{index}"}
            try:
                created = self.api.create(PODS, namespace=meta["namespace"], body=body).obj
            except ApiError as err:
                self.event(job, reason="FailedCreate", message=err.message, kind="Warning")
                break
            self.event(
                job,
                reason="SuccessfulCreate",
                message=f"Created pod: {created['metadata']['name']}",
            )
            out.append(created)
        return out

    def _delete_all(self, job: JSON, pods: list[JSON]) -> None:
        for pod in pods:
            name = pod["metadata"]["name"]
            try:
                self.api.delete(PODS, namespace=pod["metadata"]["namespace"], name=name)
            except ApiError:
                continue
            self.event(job, reason="SuccessfulDelete", message=f"Deleted pod: {name}")


def _index(pod: JSON) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(INDEX)
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1


def _ranges(indexes: set[int]) -> str:
    """completedIndexes as upstream writes it: `0-2,5`."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(x for x in indexes if x >= 0):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)
