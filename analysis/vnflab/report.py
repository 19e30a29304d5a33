"""``report.md`` of a run, and :func:`build_report`, which regenerates every derived file.

Everything is computed from the run directory (samples, manifest, points) and written without
dates or other run-to-run variation, so regenerating from the same data gives identical text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vnflab.load import Run, load_run
from vnflab.markdown import fmt_num, markdown_table
from vnflab.panels import PANELS
from vnflab.plots import write_figures
from vnflab.ranking import MetricRanking, MetricRef, combine, rank_metric
from vnflab.schema import parse_label
from vnflab.tables import figure2_markdown, summary_markdown, summary_table, write_tables

#: Draft definitions (to be refined against the probes in module_utils/vnflab).
METRIC_DEFINITIONS = """\
- **Boot time** (`metric=boot`, x = N instances started concurrently, unit ms; paper Fig. 2(a)).
  The N start commands are issued at once from a thread pool on the VNF server (`docker run`, `xl create`, ...).
  T0(i) = CLOCK_REALTIME on the VNF server just before the start command of instance i is issued.
  T1(i) = kernel receive timestamp (SO_TIMESTAMPING, software) of the first ICMP echo reply from
  instance i's address; every address that has not answered yet is polled at the returned poll interval
  (1 ms unless the request-rate cap stretches it), with 10 ms ARP retries on the prober's interface.
  `instance_ms` = T1(i) - T0(i); `all_ms` = max T1 - min T0, the time until all N instances answer.
  An instance that never answers within the timeout is a lost sample (and its `all_ms` too).
- **Response time** (`metric=response`, x = ICMP or UDP payload bytes of the request, unit µs; paper Fig. 2(b)).
  T0 = kernel software transmit timestamp of the request on Host A (its first fragment), T1 = kernel software
  receive timestamp of the (reassembled) reply on Host A. One request is in flight at a time, 2 ms apart;
  warm-up requests (ARP, connection tracking) are sent first and discarded.
  `rtt_proxy_us` = T1 - T0 on the path A -> proxy VNF -> B -> proxy VNF -> A (paper Algorithm 1);
  `rtt_direct_us` = T1 - T0 on the direct A -> B -> A link without the VNF, measured in turn with the
  proxied path, the floor the proxy adds to.
  `mode` is the probe: `icmp` (echo request/reply) or `udp` (datagram echoed by B's echo service).
  A request without a reply within the probe timeout is a lost sample.
- **VNF-server memory** (`metric=memory`, x = N instances running, unit MB = 2^20 bytes; Fig. 2(c)).
  `available_before_mb` = MemAvailable (/proc/meminfo) of the VNF server before the N instances start;
  `available_after_mb` = MemAvailable after all N answered ICMP echo and a settle time;
  `available_restored_mb` = MemAvailable after the N instances stopped and a settle time;
  `server_used_mb` = (before + restored) / 2 - after, which cancels a linear drift of the machine's memory
  over the measurement (engine and hypervisor overhead included). Each reading is the median of 5 reads.
  `instance_pss_mb` = PSS (smaps_rollup) of an instance's processes; `instance_cgroup_mb` = the memory charged
  to the instance's own cgroup (only where the platform gives each instance one).
- **Statistics.** `n` counts every sample of a point, lost ones included; `lost` the lost ones; every
  other statistic is over the `n - lost` values. CI = two-sided Student-t 95% interval of the mean;
  percentiles interpolate linearly between order statistics. Points repeat until the stopping rule of
  docs/design.md holds (`converged`) or the sample cap is reached (`cap`).
"""

BOOT = MetricRef("boot", "all_ms", "boot time")
RESPONSE = MetricRef("response", "rtt_proxy_us", "response time")
MEMORY = MetricRef("memory", "server_used_mb", "server memory")


@dataclass(frozen=True)
class Requirement:
    """A management requirement of the paper (Sections III-A and V) and the metrics that judge it."""

    section: str
    name: str
    metrics: tuple[MetricRef, ...]


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("V-A", "VMs/containers instantiation", (BOOT, MEMORY)),
    Requirement("V-B", "VNF deployment", (BOOT, MEMORY)),
    Requirement("V-C", "VM/container & VNF monitoring", (RESPONSE,)),
    Requirement("V-D", "Physical and virtual NFs coexistence", (MEMORY, RESPONSE)),
)

RANKING_NOTE = (
    "The ranking below is deliberately simple: for each metric, platforms are ranked by their mean at the "
    "largest x that every platform measured (lower is better for all three metrics; ties share a rank), "
    "and the overall order is the mean of a platform's per-metric ranks. It is a reading aid, not a "
    "significance test: where neighbouring 95% CIs overlap this is said below the table, and the "
    "qualitative factors of the paper (migration, tooling, image catalogues) are not part of it."
)

_MAX_VALUE_CHARS = 160


@dataclass(frozen=True)
class GeneratedFiles:
    """What :func:`build_report` wrote."""

    report: Path
    tables: dict[str, Path]
    figures: dict[str, list[Path]]


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b.c": "text"}``; lists and scalars as compact JSON (strings bare)."""
    flat: dict[str, str] = {}
    for key in sorted(mapping, key=str):
        value = mapping[key]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return flat


def _key_value_table(mapping: Mapping[str, Any]) -> str:
    flat = flatten(mapping)
    if not flat:
        return "_(none recorded)_\n"
    values = [v if len(v) <= _MAX_VALUE_CHARS else v[: _MAX_VALUE_CHARS - 1] + "…" for v in flat.values()]
    return markdown_table(pd.DataFrame({"key": [f"`{k}`" for k in flat], "value": values}))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_section(run: Run, summary: pd.DataFrame) -> list[str]:
    samples = run.samples
    lost = int(samples["value"].isna().sum())
    lines = [
        "## Data",
        "",
        (
            f"- `samples.jsonl`: {len(samples)} samples ({lost} lost) in {len(summary)} summary rows; "
            f"sha256 `{_sha256(run.paths.samples)}`"
        ),
    ]
    if run.points.empty:
        lines.append("- `points.jsonl`: not present or empty")
    else:
        counts = run.points["reason"].value_counts() if "reason" in run.points.columns else pd.Series(dtype="int64")
        detail = ", ".join(f"{reason} {int(counts[reason])}" for reason in sorted(counts.index))
        lines.append(f"- `points.jsonl`: {len(run.points)} points ({detail}); sha256 `{_sha256(run.paths.points)}`")
    lines.append("- `manifest.json`: " + ("present" if run.manifest else "missing"))
    if run.notes:
        lines += ["", "Data-quality notes:", ""] + [f"- {note}" for note in run.notes]
    return lines + [""]


def _platforms_table(samples: pd.DataFrame) -> str:
    if samples.empty:
        return "_(no samples)_\n"
    rows = []
    for (platform, label), group in samples.groupby(["platform", "label"], sort=True):
        parsed = parse_label(str(label))
        rows.append({
            "platform": platform,
            "label": label,
            "engine/image": f"{parsed.engine}/{parsed.image}" if parsed else "?",
            "accelerator": parsed.accelerator if parsed else "?",
            "real or stand-in": parsed.status if parsed else "unparsed label",
            "stands in for": (parsed.stands_in_for or "") if parsed else "",
            "hosts": ", ".join(sorted({str(h) for h in group["host"].dropna()})),
            "metrics": ", ".join(sorted({str(m) for m in group["metric"]})),
        })
    return markdown_table(pd.DataFrame(rows))


def _manifest_section(run: Run, samples: pd.DataFrame) -> list[str]:
    manifest = run.manifest
    lines = ["## Run manifest", "", "### Platforms (from the sample labels)", "", _platforms_table(samples)]
    hosts = manifest.get("hosts")
    lines += ["### Hosts", ""]
    if isinstance(hosts, Mapping) and hosts:
        for name in sorted(hosts, key=str):
            facts = hosts[name]
            lines += [f"#### `{name}`", "", _key_value_table(facts if isinstance(facts, Mapping) else {"": facts})]
    else:
        lines += ["_(none recorded)_", ""]
    parameters = manifest.get("parameters")
    lines += ["### Parameters", "", _key_value_table(parameters if isinstance(parameters, Mapping) else {})]
    other = {k: v for k, v in manifest.items() if k not in ("hosts", "parameters")}
    lines += ["### Other manifest fields", "", _key_value_table(other)]
    return lines


def _stopping_section(run: Run) -> list[str]:
    lines = ["## Stopping", ""]
    points = run.points
    if points.empty or "reason" not in points.columns:
        return lines + ["No `points.jsonl`: why each point stopped was not journaled.", ""]
    capped = points[points["reason"] == "cap"]
    lines.append(f"{len(points)} points journaled; {len(capped)} stopped at the sample cap without converging.")
    lines.append("")
    if not capped.empty:
        wanted = [c for c in ("platform", "metric", "quantity", "mode", "x", "n", "n_lost", "mean", "half_width",
                              "rel_half_width", "rule_rel_half_width") if c in capped.columns]
        wanted = [c for c in wanted if capped[c].notna().any()]
        ordered = capped[wanted].sort_values([c for c in ("platform", "metric", "quantity", "x") if c in wanted])
        lines += ["Points that hit the cap (their CI is wider than the rule asked for):", "",
                  markdown_table(ordered.reset_index(drop=True))]
    return lines


def _figures_section(summary: pd.DataFrame, figures: Mapping[str, list[Path]], run_dir: Path) -> list[str]:
    lines = ["## Figure 2", ""]
    for panel in PANELS:
        lines += [f"### {panel.title}", ""]
        paths = figures.get(panel.slug, [])
        png = next((p for p in paths if p.suffix == ".png"), None)
        if png is not None:
            svg = png.with_suffix(".svg")
            lines += [f"![Fig. 2{panel.key}]({png.relative_to(run_dir).as_posix()})", "",
                      f"(vector: `{svg.relative_to(run_dir).as_posix()}`)", ""]
        lines += [figure2_markdown(summary, panel)]
    return lines


def _ranking_block(rankings: list[MetricRanking], notes: list[str]) -> list[str]:
    lines: list[str] = []
    if rankings:
        combined = combine(rankings)
        means = {
            (r.column, str(p), str(lab)): f"{fmt_num(m)} [{fmt_num(lo)}, {fmt_num(hi)}] (#{rk})"
            for r in rankings
            for p, lab, m, lo, hi, rk in r.table[["platform", "label", "mean", "ci_low", "ci_high", "rank"]]
            .itertuples(index=False, name=None)
        }
        table = pd.DataFrame({"overall": combined["overall"], "platform": combined["platform"],
                              "label": combined["label"]})
        for r in rankings:
            table[f"{r.column}: mean [95% CI] (#rank)"] = [
                means[(r.column, str(p), str(lab))] for p, lab in zip(combined["platform"], combined["label"],
                                                                      strict=True)
            ]
        table["mean rank"] = combined["mean_rank"]
        lines += [markdown_table(table)]
        ranked = set(zip(combined["platform"], combined["label"], strict=True))
        for r in rankings:
            missing = sorted(str(p) for p, lab in zip(r.table["platform"], r.table["label"], strict=True)
                             if (p, lab) not in ranked)
            if missing:
                notes.append(f"not ranked overall (missing another metric): {', '.join(missing)}")
            for better, worse in r.overlaps:
                notes.append(f"{r.column}: 95% CIs of {better} and {worse} overlap; their order is not resolved")
    else:
        lines += ["_No ranking: no usable samples for these metrics._", ""]
    if notes:
        lines += [f"- {note}" for note in dict.fromkeys(notes)] + [""]
    return lines


def _requirements_section(summary: pd.DataFrame) -> list[str]:
    lines = [
        "## Management requirements (paper Section V)",
        "",
        "Mapping of metrics to the paper's four quantitative management requirements:",
        "",
    ]
    for req in REQUIREMENTS:
        lines.append(f"- {req.name} (Section {req.section}) <- " + " + ".join(m.name for m in req.metrics))
    lines += [
        "",
        RANKING_NOTE,
        "",
    ]
    for req in REQUIREMENTS:
        lines += [f"### {req.section} {req.name}", ""]
        rankings: list[MetricRanking] = []
        notes: list[str] = []
        for ref in req.metrics:
            found, why = rank_metric(summary, ref)
            rankings += found
            notes += why
        lines += _ranking_block(rankings, notes)
    return lines


def render_report(run: Run, summary: pd.DataFrame, figures: Mapping[str, list[Path]]) -> str:
    """The text of ``report.md`` (deterministic for the same run directory contents)."""
    lines = [
        f"# vnflab run `{run.run_id}`",
        "",
        (
            "Generated by `vnflab report` from this run directory alone; every table and figure is derived "
            "from `samples.jsonl` (raw samples, never edited) and can be regenerated with the same command."
        ),
        "",
    ]
    lines += _data_section(run, summary)
    lines += _manifest_section(run, run.samples)
    lines += ["## Metric definitions", "", METRIC_DEFINITIONS]
    lines += _stopping_section(run)
    lines += _figures_section(summary, figures, run.paths.run_dir)
    lines += ["## Summary table", "",
              "All points (CSV with stdev, min, max, p95: `tables/summary.csv`).", "",
              summary_markdown(summary)]
    lines += _requirements_section(summary)
    return "\n".join(lines).rstrip("\n") + "\n"


def build_report(run_dir: Path) -> GeneratedFiles:
    """Regenerate tables, figures and ``report.md`` of ``run_dir`` from its raw files."""
    run = load_run(Path(run_dir))
    summary = summary_table(run.samples, run.points)
    tables = write_tables(summary, run.paths.tables_dir)
    figures = write_figures(summary, run.paths.figures_dir)
    text = render_report(run, summary, figures)
    run.paths.report.write_text(text, encoding="utf-8", newline="\n")
    return GeneratedFiles(report=run.paths.report, tables=tables, figures=figures)
