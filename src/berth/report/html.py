"""The pages: node heat maps (requested share and live metrics), pending pods with each node's
reasons, every placed pod's score by plugin, the pods two configurations place differently, and
one pod's explanation. Everything is escaped and inline (no CDN, no fonts, no images to fetch),
so a page opens the same offline, attached to a ticket or from a CI artefact."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from berth.explain import PASSED, Explanation, conclusion

# One colour per score plugin, stable across pages (by position in the profile's list).
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#17becf",
)  # fmt: skip
MAX_REASON_NODES = 200  # per pending pod, the nodes listed with their reasons

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 2em 3em;color:#222;background:#fafafa}
h1{font-size:1.5em;margin:1em 0 .3em}h2{font-size:1.2em;margin:1.6em 0 .4em;
border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.4em 0;background:#fff}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#eee;cursor:pointer;user-select:none}td.num{text-align:right}
.muted{color:#777}.bad{color:#b00}.good{color:#070}.summary span{margin-right:1.5em}
.heat{display:inline-block;margin:0 1.5em 1em 0;vertical-align:top}
.legend{font-size:12px}input.filter{margin:.3em 0;padding:2px 6px;width:20em}
details{margin:.1em 0}summary{cursor:pointer}svg text{font:11px system-ui,sans-serif}
"""

# Sorting by a header click and filtering by the box above a table: no library, no network.
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th){
  th.addEventListener('click',function(){
    var table=th.closest('table'),body=table.tBodies[0],i=th.cellIndex,
        asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=a.cells[i].dataset.v||a.cells[i].textContent,
          y=b.cells[i].dataset.v||b.cells[i].textContent,
          nx=parseFloat(x),ny=parseFloat(y);
      var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
      return asc?c:-c;});
    rows.forEach(function(r){body.appendChild(r);});});});
document.querySelectorAll('input.filter').forEach(function(box){
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase(),table=document.getElementById(box.dataset.table);
    Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
      r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});});});
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def heat_colour(share: float) -> str:
    """Green at 0, yellow at 0.5, red at 1 and beyond."""
    share = min(max(share, 0.0), 1.0)
    return f"hsl({round(120 * (1 - share))},70%,55%)"


def page(title: str, body: Iterable[str]) -> str:
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
            *body,
            f"<script>{_SCRIPT}</script></body></html>\n",
        ]
    )


# ----- heat maps ------------------------------------------------------------------------------
def heat_map(title: str, values: Mapping[str, float], *, label: str, scale: str = "share") -> str:
    """One SVG square per node, coloured by `values` (a share of allocatable, or a metric
    normalised between its lowest and highest value), its value in the tooltip."""
    names = sorted(values)
    if not names:
        return ""
    cell, gap = (14, 2) if len(names) > 400 else (22, 3)
    per_row = max(1, min(len(names), 1200 // (cell + gap)))
    rows = -(-len(names) // per_row)
    lo, hi = min(values.values()), max(values.values())
    parts = [
        f'<div class="heat"><div><b>{esc(title)}</b> <span class="muted">'
        f"({esc(label)})</span></div>",
        f'<svg class="heatmap" role="img" aria-label="{esc(title)}" '
        f'width="{per_row * (cell + gap)}" height="{rows * (cell + gap)}">',
    ]
    for k, name in enumerate(names):
        v = values[name]
        share = v if scale == "share" else ((v - lo) / (hi - lo) if hi > lo else 0.0)
        x, y = (k % per_row) * (cell + gap), (k // per_row) * (cell + gap)
        shown = f"{v:.0%}" if scale == "share" else f"{v:g}"
        parts.append(
            f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" '
            f'fill="{heat_colour(share)}"><title>{esc(name)}: {esc(shown)}</title></rect>'
        )
    parts.append("</svg>")
    ends = ("0%", "100%") if scale == "share" else (f"{lo:g}", f"{hi:g}")
    parts.append(
        f'<div class="legend"><span style="color:{heat_colour(0)}">&#9632;</span> {ends[0]} '
        f'<span style="color:{heat_colour(0.5)}">&#9632;</span> '
        f'<span style="color:{heat_colour(1)}">&#9632;</span> {ends[1]}</div></div>'
    )
    return "".join(parts)


def heat_maps(
    usage: Mapping[str, Mapping[str, float]], metrics: Mapping[str, Mapping[str, float]]
) -> str:
    out = ['<h2 id="nodes">Nodes</h2><section class="heatmaps">']
    for resource in ("cpu", "memory", "pods"):
        values = {n: row.get(resource, 0.0) for n, row in usage.items()}
        out.append(heat_map(f"requested {resource}", values, label="share of allocatable"))
    for name, series in sorted(metrics.items()):
        shown = {n: v for n, v in series.items() if n in usage}
        if shown:
            out.append(heat_map(f"metric {name}", shown, label="live value", scale="range"))
    if not metrics:
        out.append('<p class="muted">No live metrics: the configuration has no metricSources.</p>')
    out.append("</section>")
    return "".join(out)


# ----- score breakdowns ---------------------------------------------------------------------
def score_bar(weighted: Mapping[str, int], plugins: Sequence[str], *, scale: float) -> str:
    """A stacked bar of a node's weighted score per plugin (width proportional to `scale`)."""
    width = 320
    x = 0.0
    parts = [f'<svg class="scorebar" width="{width}" height="14" role="img">']
    for i, plugin in enumerate(plugins):
        w = weighted.get(plugin, 0)
        if w <= 0:
            continue
        span = w / scale * width if scale > 0 else 0
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{span:.1f}" height="14" '
            f'fill="{PALETTE[i % len(PALETTE)]}"><title>{esc(plugin)}: {w}</title></rect>'
        )
        x += span
    parts.append("</svg>")
    return "".join(parts)


def plugin_legend(plugins: Sequence[str], weights: Mapping[str, int]) -> str:
    items = [
        f'<span style="color:{PALETTE[i % len(PALETTE)]}">&#9632;</span> {esc(p)} '
        f"(weight {weights.get(p, 1)})"
        for i, p in enumerate(plugins)
    ]
    return '<p class="legend">' + " &nbsp; ".join(items) + "</p>"


def filter_box(table_id: str, what: str) -> str:
    return f'<input class="filter" data-table="{table_id}" placeholder="filter {esc(what)}">'


# ----- berth simulate --report --------------------------------------------------------------
@dataclass
class PodResult:
    """One pod's decision as the report shows it."""

    pod: str
    node: str | None
    message: str = ""
    reasons: dict[str, list[str]] = field(default_factory=dict)  # node -> reasons (pending)
    # node -> plugin -> weighted score (the scored nodes), and the totals
    scores: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    preempted: list[str] = field(default_factory=list)


@dataclass
class SimulationReport:
    title: str
    results: list[PodResult]
    plugins: list[str]  # score plugins, in the profiles' order
    weights: dict[str, int]
    usage: dict[str, dict[str, float]]  # node -> requested share, after the run
    metrics: dict[str, dict[str, float]]  # metric -> node -> value
    compare: list[tuple[str, str | None, str | None]] | None = None  # pod, node (C1), node (C2)
    compare_labels: tuple[str, str] = ("this configuration", "the other")
    warnings: list[str] = field(default_factory=list)


def simulation_page(report: SimulationReport) -> str:
    placed = [r for r in report.results if r.node]
    pending = [r for r in report.results if not r.node]
    body = [
        f"<h1>{esc(report.title)}</h1>",
        '<p class="summary">',
        f"<span><b>{len(report.results)}</b> pods decided</span>",
        f'<span class="good"><b>{len(placed)}</b> placed</span>',
        f'<span class="bad"><b>{len(pending)}</b> pending</span>',
        f"<span><b>{len(report.usage)}</b> nodes</span>",
    ]
    if report.compare is not None:
        body.append(f"<span><b>{len(report.compare)}</b> placed differently</span>")
    body.append("</p>")
    for warning in report.warnings:
        body.append(f'<p class="bad">warning: {esc(warning)}</p>')
    body.append(heat_maps(report.usage, report.metrics))
    if report.compare is not None:
        body.append(_compare_section(report))
    body.append(_pending_section(pending))
    body.append(_placed_section(placed, report.plugins, report.weights))
    return page(report.title, body)


def _compare_section(report: SimulationReport) -> str:
    assert report.compare is not None
    a, b = report.compare_labels
    out = [
        '<h2 id="compare">Placed differently</h2>',
        f"<p>Pods {esc(a)} and {esc(b)} place on different nodes (or one leaves pending).</p>",
    ]
    if not report.compare:
        out.append('<p class="good">Both configurations place every pod alike.</p>')
        return "".join(out)
    out.append(filter_box("compare-table", "pods"))
    out.append(
        f'<table id="compare-table" class="sortable"><thead><tr><th>pod</th><th>{esc(a)}</th>'
        f"<th>{esc(b)}</th></tr></thead><tbody>"
    )
    for pod, one, other in report.compare:
        out.append(
            f"<tr><td>{esc(pod)}</td><td>{esc(one or '(pending)')}</td>"
            f"<td>{esc(other or '(pending)')}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _pending_section(pending: list[PodResult]) -> str:
    out = [f'<h2 id="pending">Pending pods ({len(pending)})</h2>']
    if not pending:
        out.append('<p class="good">Every pod was placed.</p>')
        return "".join(out)
    out.append(filter_box("pending-table", "pending pods"))
    out.append(
        '<table id="pending-table" class="sortable"><thead><tr><th>pod</th><th>why</th>'
        "<th>per node</th></tr></thead><tbody>"
    )
    for r in pending:
        rows = "".join(
            f"<tr><td>{esc(node)}</td><td>{esc(', '.join(reasons))}</td></tr>"
            for node, reasons in sorted(r.reasons.items())[:MAX_REASON_NODES]
        )
        more = len(r.reasons) - MAX_REASON_NODES
        if more > 0:
            rows += f'<tr><td colspan="2" class="muted">and {more} more nodes</td></tr>'
        detail = (
            f"<details><summary>{len(r.reasons)} nodes</summary><table><tbody>{rows}"
            "</tbody></table></details>"
            if r.reasons
            else '<span class="muted">no node was tried</span>'
        )
        out.append(f"<tr><td>{esc(r.pod)}</td><td>{esc(r.message)}</td><td>{detail}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _placed_section(placed: list[PodResult], plugins: list[str], weights: dict[str, int]) -> str:
    out = [f'<h2 id="placed">Placed pods ({len(placed)})</h2>']
    if not placed:
        return "".join(out)
    out.append(plugin_legend(plugins, weights))
    out.append(filter_box("placed-table", "placed pods"))
    scale = max((max(r.totals.values(), default=0) for r in placed), default=0) or 1
    out.append(
        '<table id="placed-table" class="sortable"><thead><tr><th>pod</th><th>node</th>'
        "<th>total</th><th>score by plugin (chosen node)</th><th>other nodes</th></tr></thead>"
        "<tbody>"
    )
    for r in placed:
        assert r.node is not None
        chosen = r.scores.get(r.node, {})
        total = r.totals.get(r.node)
        others = sorted(
            ((t, n) for n, t in r.totals.items() if n != r.node), key=lambda tn: (-tn[0], tn[1])
        )[:10]
        rows = "".join(
            f"<tr><td>{esc(n)}</td><td class='num'>{t}</td>"
            f"<td>{score_bar(r.scores.get(n, {}), plugins, scale=scale)}</td></tr>"
            for t, n in others
        )
        detail = (
            f"<details><summary>{len(r.totals) - 1} scored</summary><table><tbody>{rows}"
            "</tbody></table></details>"
            if others
            else '<span class="muted">the only node scored</span>'
        )
        note = f" (preempted {esc(', '.join(r.preempted))})" if r.preempted else ""
        out.append(
            f"<tr><td>{esc(r.pod)}</td><td>{esc(r.node)}{note}</td>"
            f"<td class='num'>{'' if total is None else total}</td>"
            f"<td>{score_bar(chosen, plugins, scale=scale) if chosen else ''}</td>"
            f"<td>{detail}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


# ----- berth explain -o html ----------------------------------------------------------------
def explanation_page(expl: Explanation) -> str:
    plugins = [n for n, _ in expl.score_plugins if n not in expl.skipped_scores]
    weights = dict(expl.score_plugins)
    where = f"bound to {expl.node}" if expl.node else "pending"
    title = f"berth explain {expl.pod}"
    body = [
        f"<h1>{esc(expl.pod)} <span class='muted'>({esc(where)}, profile "
        f"{esc(expl.profile)})</span></h1>",
        f"<p class='summary'><span><b>{len(expl.feasible)}</b> of {len(expl.nodes)} nodes "
        f"feasible</span></p>",
        f"<p><b>{esc(conclusion(expl))}</b></p>",
    ]
    if expl.gated:
        body.append(f"<p class='bad'>gated: {esc(expl.gated)}</p>")
    if expl.pre_filter:
        body.append(f"<p class='bad'>PreFilter rejects the pod: {esc(expl.pre_filter)}</p>")
    body.append(heat_maps(expl.usage, expl.metrics))
    body.append('<h2 id="verdicts">Nodes, their verdict and score</h2>')
    body.append(plugin_legend(plugins, weights))
    body.append(filter_box("verdict-table", "nodes"))
    scale = max((v.total or 0 for v in expl.nodes), default=0) or 1
    head = "".join(f"<th>{esc(p)}</th>" for p in plugins)
    body.append(
        '<table id="verdict-table" class="sortable"><thead><tr><th>node</th><th>verdict</th>'
        f"<th>total</th><th>score by plugin</th>{head}</tr></thead><tbody>"
    )
    for v in expl.nodes:
        marks = []
        if v.node in expl.winners:
            marks.append("winner")
        if v.node == expl.node:
            marks.append("current")
        mark = f" <b>({', '.join(marks)})</b>" if marks else ""
        if v.feasible:
            weighted = {p: s.weighted for p, s in v.scores.items()}
            cells = "".join(
                f"<td class='num' title='raw {v.scores[p].raw}, normalised "
                f"{v.scores[p].normalized}'>{v.scores[p].weighted}</td>"
                if p in v.scores
                else "<td></td>"
                for p in plugins
            )
            body.append(
                f"<tr><td>{esc(v.node)}{mark}</td><td class='good'>feasible</td>"
                f"<td class='num'>{v.total}</td>"
                f"<td>{score_bar(weighted, plugins, scale=scale)}</td>{cells}</tr>"
            )
        else:
            empty = "<td></td>" * len(plugins)
            body.append(
                f"<tr><td>{esc(v.node)}{mark}</td>"
                f"<td class='bad'>{esc(v.plugin)}: {esc(', '.join(v.reasons))}</td>"
                f"<td></td><td></td>{empty}</tr>"
            )
    body.append("</tbody></table>")
    body.append(_filter_matrix(expl))
    body.append(
        "<details><summary>the explanation as JSON</summary><pre>"
        f"{esc(json.dumps(expl.to_json(), indent=1)[:200_000])}</pre></details>"
    )
    return page(title, body)


def _filter_matrix(expl: Explanation) -> str:
    filtered = [v for v in expl.nodes if v.filters]
    if not filtered:
        return ""
    head = "".join(f"<th>{esc(p)}</th>" for p in expl.filters)
    out = [
        '<h2 id="filters">Every filter on every node</h2>',
        filter_box("filter-table", "nodes"),
        f'<table id="filter-table" class="sortable"><thead><tr><th>node</th>{head}</tr></thead>'
        "<tbody>",
    ]
    for v in filtered:
        cells = []
        for p in expl.filters:
            verdict = v.filters.get(p, "")
            if verdict == PASSED:
                cells.append("<td class='good'>&#10003;</td>")
            else:
                cells.append(f"<td class='bad' title='{esc(verdict)}'>{esc(verdict)}</td>")
        out.append(f"<tr><td>{esc(v.node)}</td>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


__all__ = [
    "PodResult",
    "SimulationReport",
    "explanation_page",
    "heat_colour",
    "heat_map",
    "simulation_page",
]
