"""The differential run: N generated clusters at a seed through Berth and upstream's oracle; on
the first divergence, Hypothesis shrinks the case and the smallest one is written out with the
command that replays it. `./dev differential --count N --seed S` is this module's command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from berth.upstream.errors import UpstreamError
from berth.upstream.oracle import Oracle
from tests.differential.generator import Case, clusters
from tests.differential.harness import Outcome, capacity_paths, run_case, write_reproduction

# The default plugins whose Filter must have rejected a node somewhere in a run, and whose
# Score must have told nodes apart: a generator that stops reaching one fails the run. NodeName
# is not among them: a pod that names its node is bound, never pending, so its Filter passes.
FILTERS = (
    "NodeUnschedulable",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
    "PodTopologySpread",
    "InterPodAffinity",
    "DynamicResources",
)
SCORES = (
    "TaintToleration",
    "NodeAffinity",
    "NodeResourcesFit",
    "NodeResourcesBalancedAllocation",
    "ImageLocality",
    "InterPodAffinity",
    "PodTopologySpread",
)
# Scored on every node of a run, not necessarily told apart: VolumeBinding's score varies only
# when nodes' matching PVs differ in size for the claim, which small clusters rarely have.
SCORED = ("VolumeBinding",)
# Consumable capacity (DRAConsumableCapacity): pods whose claims ask for a share of a device
# that allows multiple allocations, placed, refused, and one device allocated more than once.
CAPACITY = tuple(
    f"DRA/ConsumableCapacity/{p}" for p in ("Scheduled", "Unschedulable", "SharedDevice")
)


@dataclass
class Report:
    examples: int = 0
    shrinks: int = 0
    seconds: float = 0.0
    coverage: Counter[str] = field(default_factory=Counter)
    reproduction: Path | None = None
    command: str = ""
    differences: list[str] = field(default_factory=list)
    oracle_errors: list[str] = field(default_factory=list)  # the oracle's machinery failed
    interrupted: bool = False  # stopped (Ctrl-C) before `count` clusters: what it reached

    def unreached(self) -> list[str]:
        """The plugin paths a run should reach and did not."""
        missing = [
            f"Filter/{p}"
            for p in FILTERS
            if not any(k.startswith(f"Filter/{p}/") for k in self.coverage)
        ]
        missing += [f"Score/{p}/varied" for p in SCORES if not self.coverage[f"Score/{p}/varied"]]
        missing += [f"Score/{p}/scored" for p in SCORED if not self.coverage[f"Score/{p}/scored"]]
        for key in ("Scheduled", "Unschedulable", "Preempted", "Invalid", *CAPACITY):
            if not self.coverage[key]:
                missing.append(key)
        return missing

    def table(self) -> str:
        width = max((len(k) for k in self.coverage), default=10)
        return "\n".join(f"{k:<{width}}  {v:>8}" for k, v in sorted(self.coverage.items()))


class _Divergence(AssertionError):
    pass


def run(
    count: int,
    seed_value: int,
    out_dir: Path,
    oracle: Oracle,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Run `count` generated clusters; stop at the first divergence, shrunk. `progress` is
    called with the report after each agreed cluster."""
    report = Report()
    last: list[tuple[Case, Outcome]] = []
    start = time.monotonic()

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        report_multiple_bugs=False,
    )
    @seed(seed_value)
    @given(clusters())
    def check(case: Case) -> None:
        outcome = run_case(oracle, case)
        if outcome.oracle_error:
            # Not Berth's to shrink: counted, and the run fails at its end.
            if not last:
                report.oracle_errors.append(outcome.oracle_error)
            return
        if last:
            report.shrinks += 1
        else:
            report.examples += 1
            report.coverage.update(outcome.coverage)
            report.coverage["Invalid"] += sum(1 for d in outcome.upstream if d.get("invalid"))
            report.coverage["Preempted"] += sum(1 for d in outcome.upstream if d.get("preempted"))
            report.coverage.update(capacity_paths(case, outcome.upstream))
        if outcome.differences:
            last[:] = [(case, outcome)]
            raise _Divergence(str(outcome.differences[0]))
        if progress is not None and not last:
            report.seconds = time.monotonic() - start
            progress(report)

    try:
        check()
    except KeyboardInterrupt:
        report.interrupted = True
    except _Divergence:
        pass
    if last:
        # Hypothesis replays the smallest failing case last (interrupted while shrinking: the
        # smallest so far): that is the one kept.
        case, outcome = last[0]
        report.reproduction, report.command = write_reproduction(case, outcome, out_dir)
        report.differences = [str(d) for d in outcome.differences]
    report.seconds = time.monotonic() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./dev differential",
        description="Generated clusters through Berth and kube-scheduler's own plugins, compared.",
    )
    parser.add_argument("--count", type=int, default=2000, help="clusters to generate")
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed")
    parser.add_argument(
        "--out", type=Path, default=Path("differential-out"), help="where a divergence is written"
    )
    parser.add_argument(
        "--coverage", action="store_true", help="print the plugin paths the cases reached"
    )
    parser.add_argument(
        "--progress",
        type=int,
        default=500,
        metavar="N",
        help="print a line on stderr every N agreed clusters (0: none)",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count: must be at least 1")
    every = args.progress

    def progress(report: Report) -> None:
        if every > 0 and report.examples % every == 0:
            print(f"{report.examples} clusters agreed, {report.seconds:.0f}s", file=sys.stderr)

    try:
        with Oracle() as oracle:
            report = run(args.count, args.seed, args.out, oracle, progress)
    except UpstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.coverage:
        print(report.table())
    if report.reproduction:
        verdict = f"divergence (shrunk in {report.shrinks} runs)"
    else:
        verdict = "interrupted, 0 divergences so far" if report.interrupted else "0 divergences"
    print(f"{report.examples} clusters at seed {args.seed} in {report.seconds:.0f}s: {verdict}")
    if report.oracle_errors:
        print(f"the oracle itself failed on {len(report.oracle_errors)} cluster(s):")
        for line in report.oracle_errors[:5]:
            print(f"  {line}")
        return 1
    if report.reproduction:
        for line in report.differences[:20]:
            print(f"  {line}")
        print(f"reproduction: {report.reproduction}\nreplay: {report.command}")
        return 1
    if report.interrupted:
        return 130
    missing = report.unreached()
    if missing:
        print(f"the generated cases never reached: {', '.join(missing)}")
        return 1 if args.count >= 1000 else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
