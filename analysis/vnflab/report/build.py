"""``report.md`` of a run, and :func:`build_report`, which regenerates every derived file.

Everything is computed from the run directory (samples, manifest, points) and written without
dates or other run-to-run variation, so regenerating from the same data gives identical text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vnflab.markdown import markdown_table
from vnflab.measure.manifest import assemble_manifest
from vnflab.measure.schema import parse_label
from vnflab.report.chain import SLUG as CHAIN_SLUG
from vnflab.report.chain import chain_section
from vnflab.report.migration import SLUG as MIGRATION_SLUG
from vnflab.report.migration import migration_section
from vnflab.report.overhead_plot import write_overhead_figure
from vnflab.report.paper import load_paper
from vnflab.report.plots import write_figures
from vnflab.report.requirements import load_requirements
from vnflab.report.sections import (
    Section,
    conclusions_section,
    outliers_section,
    overhead_section,
    requirements_section,
    sensitivity_section,
    summary_section,
)
from vnflab.report.table_export import write_table_files
from vnflab.report.tables import figure2_markdown, summary_markdown, summary_table, write_tables
from vnflab.stats.load import Run, load_run
from vnflab.stats.overhead import DEFAULT_BASELINE, overhead_view
from vnflab.stats.panels import PANELS

#: The metric definitions every report carries. docs/metrics.md holds the same text verbatim (a unit test checks it),
#: with the context a reader of the repository needs around it.
METRIC_DEFINITIONS = """\
- **Boot time** (`metric=boot`, x = N instances started concurrently, unit ms; paper Fig. 2(a)).
  The probe module runs on the VNF server; the N start commands are issued at once from a thread pool
  (`docker run`, `xl create`, ...). T0(i) = CLOCK_REALTIME on the VNF server just before the start command of
  instance i is issued. T1(i) = kernel receive timestamp (SO_TIMESTAMPING, software) of the first ICMP echo reply
  from instance i's address; every address that has not answered yet is polled at the returned poll interval
  (1 ms unless the request-rate cap `max_pps` stretches it), with 10 ms ARP retries on the prober's interface
  (otherwise boot times round up to whole seconds).
  `instance_ms` = T1(i) - T0(i); `all_ms` = max T1 - min T0, the time until all N instances answer.
  An instance that never answers within the timeout is a lost sample (and its `all_ms` too).
  The instances are stopped afterwards.
- **Response time** (`metric=response`, x = ICMP or UDP payload bytes of the request, unit µs; paper Fig. 2(b)).
  T0 = kernel software transmit timestamp of the request on Host A (its first fragment), T1 = kernel software
  receive timestamp of the (reassembled) reply on Host A. One request is in flight at a time, 2 ms apart;
  warm-up requests (ARP, connection tracking) are sent first and discarded.
  `rtt_proxy_us` = T1 - T0 on the path A -> proxy VNF -> B -> proxy VNF -> A (paper Algorithm 1);
  `rtt_direct_us` = T1 - T0 on the direct A -> B -> A link without the VNF, measured in turn with the
  proxied path, the floor the proxy adds to.
  `mode` is the probe: `icmp` (echo request/reply, answered by B's kernel) or `udp` (datagram echoed by B's echo
  service). A request without a reply within the probe timeout (1 s) is a lost sample, kept as such.
- **VNF-server memory** (`metric=memory`, x = N instances running, unit MB = 2^20 bytes; Fig. 2(c)).
  `available_before_mb` = MemAvailable (/proc/meminfo) of the VNF server before the N instances start;
  `available_after_mb` = MemAvailable after all N answered ICMP echo and a settle time (2 s);
  `available_restored_mb` = MemAvailable after the N instances stopped and a settle time;
  `server_used_mb` = (before + restored) / 2 - after, which cancels a linear drift of the machine's memory
  over the measurement (engine and hypervisor overhead included). Each reading is the median of 5 reads.
  `instance_pss_mb` = PSS (smaps_rollup) of an instance's processes; `instance_cgroup_mb` = the memory charged
  to the instance's own cgroup (only where the platform gives each instance one); `instance_hypervisor_mb` = the
  hypervisor's own figure for the instance (e.g. `xl list`), where the platform gives one.
  Fig. 2(c) draws, per batch, the quantity the platform measures exactly, `exact_used_mb`: Xen = the sum of
  `instance_hypervisor_mb` (xl's memory of each domain) plus `server_used_mb` (dom0's own delta, the backends
  and toolstack a domain costs); Docker, QEMU and others = the sum of `instance_pss_mb` over the N instances
  (`instances_cgroup_mb`, the sum of the cgroup charges, beside it for Docker). A batch in which an instance
  lacks its figure is a lost value. `server_used_mb` stays beside it (dotted), the whole-server view with its
  noise; a platform without any per-instance figure is drawn from `server_used_mb`, and the table says so.
- **VNF migration** (`metric=migration`, x = 1 VNF, the path's proxy; beyond the paper, tag `migration`).
  Host A sends one echo request every `interval_ms` (1 ms) through the proxy for `duration_s`, a fixed and
  bounded rate whatever the replies; `lead_in_s` into it, the VNF server runs the platform driver's `migrate`
  command once. `total_ms` = the command's wall time (CLOCK_REALTIME on the server); `downtime_ms` = the longest
  time without a reply on Host A (from the first request, between two replies, or to the end of the stream when
  the path did not come back: then a lost sample); `requests_sent`, `requests_lost` = requests without a reply
  (a reply may come up to 1 s after the stream's last request); `bytes_transferred` and `platform_downtime_ms`
  where the platform says (QEMU's `query-migrate`: RAM transferred, its own downtime); `baseline_gap_ms` = the
  stream's longest gap away from the move (its noise floor, which the downtime must stand out of). A platform
  without a mechanism on this server journals one `skipped` sample (value null) whose `reason` says why.
- **Service chains** (`metric=chain`, x = k VNFs in series on one server; beyond the paper, tag `chain`).
  A -> VNF1 -> ... -> VNFk -> B: hop 1 on the path's A-side bridge (address .3), hop k on the B-side bridge (.3),
  the k - 1 links between them /30s of the server's `vnflab_chain_cidr` on bridges `vbr-<platform>-<j>`; Host A's
  requests come from its chain address (.4 of the A side). `boot_chain_ms` = Host A's first echo reply through all
  k hops (requests one at a time, each waiting 10 ms) minus the server's first hop start command (CLOCK_REALTIME;
  null when no reply came within `boot_timeout_s`: a lost sample); `rtt_chain_us` = RTT through the chain, as the
  response probe measures it, its `mode` the probe mode and payload size (`icmp 64 B`). The report sets each k
  against k times the single VNF's (k = 1) median. A platform whose driver has no `chain` key, or a server without
  `vnflab_chain_cidr`, journals one `skipped` sample whose `reason` says why.
- **Statistics.** `n` counts every sample of a point, lost ones included; `lost` the lost ones; every
  other statistic is over the `n - lost` values. CI of the mean = two-sided Student-t 95% interval;
  CIs of the median, p95 and p99 (`tables/summary.csv`) = percentile bootstrap, 2000 resamples with a
  fixed seed (identical on every rebuild); percentiles interpolate linearly between order statistics.
  Outliers (outside Tukey's fences, 1.5 IQR) are counted in `n_outliers` and listed, never dropped.
  Points repeat until the stopping rule of docs/design.md holds (`converged`) or the sample cap is
  reached (`cap`), or the point's time budget ran out (`budget`). Platforms, and runs, are compared with
  the two-sided Mann-Whitney U test on the raw samples (no normality assumed; exact permutation test for
  small samples), with Cliff's delta as effect size; `vnflab compare` adjusts p with Holm's method within
  each platform and metric (or Benjamini-Hochberg over the run) and states each point's minimum
  detectable change; one run a side, a change must also exceed a declared run-to-run tolerance,
  several runs a side are compared by their run medians (section "What a comparison can tell";
  docs/statistics.md).
"""

_MAX_VALUE_CHARS = 160


@dataclass(frozen=True)
class ReportOptions:
    """Choices of ``vnflab report``: the overhead baseline, the requirement weights, the paper data."""

    baseline: str = DEFAULT_BASELINE
    weights: Path | None = None
    paper: Path | None = None


@dataclass(frozen=True)
class GeneratedFiles:
    """What :func:`build_report` wrote."""

    report: Path
    html: Path
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
        "## Appendix: data",
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
    if not run.failures.empty:
        retried = int(run.failures["retried"].sum()) if "retried" in run.failures.columns else 0
        lines.append(f"- `failures.jsonl`: {len(run.failures)} batches in which an instance failed to start "
                     f"({retried} measured again); sha256 `{_sha256(run.paths.failures)}`")
    if not run.batches.empty:
        lines.append(f"- `batches.jsonl`: {_batches_line(run.batches)}; sha256 `{_sha256(run.paths.batches)}`")
    lines.append("- `manifest.json`: " + ("present" if run.manifest else "missing"))
    if run.notes:
        lines += ["", "Data-quality notes:", ""] + [f"- {note}" for note in run.notes]
    return lines + [""]


def _batches_line(batches: pd.DataFrame) -> str:
    """How the probes of the measured batches ended, and the clock reads they did not trust."""
    def total(column: str) -> int:
        if column not in batches.columns:
            return 0
        return int(pd.to_numeric(batches[column], errors="coerce").fillna(0).sum())

    at_deadline = int((batches["probe.ended"] == "deadline").sum()) if "probe.ended" in batches.columns else 0
    glitch_count = total("probe.clock_glitches")
    late_count = total("probe.late_replies")
    return (f"prober diagnostics of {len(batches)} batches: {at_deadline} ended at the deadline with instances "
            f"unanswered, {late_count} replies came after it, {glitch_count} clock reads were found bad and "
            "were ignored")


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
    lines = ["## Appendix: run manifest", "", "### Platforms (from the sample labels)", "", _platforms_table(samples)]
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
    capped = points[points["reason"] != "converged"]
    lines.append(f"{len(points)} points journaled; {len(capped)} stopped without converging "
                 "(at the sample cap, or at the time budget where the profile set one).")
    lines.append("")
    lines += _batches_needed(points)
    if not capped.empty:
        wanted = [c for c in ("platform", "metric", "quantity", "mode", "x", "reason", "n", "n_lost", "mean",
                              "half_width", "rel_half_width", "rule_rel_half_width", "needed", "elapsed_s")
                  if c in capped.columns]
        wanted = [c for c in wanted if capped[c].notna().any()]
        ordered = capped[wanted].sort_values([c for c in ("platform", "metric", "quantity", "x") if c in wanted])
        lines += ["Points that did not converge (their CI is wider than the rule asked for):", "",
                  markdown_table(ordered.reset_index(drop=True))]
    return lines


def _needed(points: pd.DataFrame) -> pd.Series:
    """Values each point's CI needed: as journaled, or (older runs) from its mean, half-width and rule."""
    from vnflab.measure.stopping import samples_needed, t_half_width

    journaled = points["needed"] if "needed" in points.columns else pd.Series([None] * len(points), index=points.index)
    out = []
    for (_, row), value in zip(points.iterrows(), journaled, strict=True):
        if pd.notna(value):
            out.append(int(value))
            continue
        try:
            n_ok, mean, half = int(row["n_ok"]), float(row["mean"]), float(row["half_width"])
            rel, confidence = float(row["rule_rel_half_width"]), float(row["rule_confidence"])
        except (KeyError, TypeError, ValueError):
            out.append(None)
            continue
        unit_half = t_half_width(1.0, n_ok, confidence)  # half-width per unit of standard deviation
        stdev = half / unit_half if unit_half and pd.notna(unit_half) else float("nan")
        out.append(samples_needed(stdev, mean, rel, confidence))
    return pd.Series(out, index=points.index, dtype="object")


def _batches_needed(points: pd.DataFrame) -> list[str]:
    """Per platform and metric: how many batches each point needed and how it stopped."""
    if "batches" not in points.columns:
        return []
    lines = ["Batches each point took, per platform and metric (x: batches; a point that did not converge says "
             "why, `cap` or `budget`, and how many values its 95% CI would have needed at the variance it saw):",
             ""]
    needed = _needed(points)
    rows = []
    for (platform, metric), group in points.assign(_needed=needed).sort_values(["platform", "metric", "x"]).groupby(
            ["platform", "metric"], sort=True):
        cells = [f"{int(x)}: {int(b) if pd.notna(b) else '?'}"
                 + ("" if reason == "converged" else f" {reason}" + (f", needs {int(n)}" if pd.notna(n) else ""))
                 for x, b, reason, n in zip(group["x"], group["batches"], group["reason"], group["_needed"],
                                            strict=True)]
        cap = ""
        if "rule_max_samples" in group.columns and group["rule_max_samples"].notna().any():
            cap = str(int(group["rule_max_samples"].max()))
        budget = ""
        if "rule_time_budget_s" in group.columns and group["rule_time_budget_s"].notna().any():
            budget = f"{float(group['rule_time_budget_s'].max()):g}"
        rows.append({"platform": platform, "metric": metric, "batches by x": "; ".join(cells),
                     "converged": f"{int((group['reason'] == 'converged').sum())} of {len(group)}",
                     "cap": cap, "budget (s)": budget})
    return lines + [markdown_table(pd.DataFrame(rows)), ""]


def _failures_section(run: Run) -> list[str]:
    """Batches the platform failed to start: kept in the record, never silently replaced."""
    failures = run.failures
    if failures.empty:
        return []
    wanted = [c for c in ("platform", "metric", "x", "batch", "retried", "time", "msg") if c in failures.columns]
    ordered = failures[wanted].sort_values([c for c in ("platform", "metric", "x", "time") if c in wanted])
    return ["## Failed starts", "",
            (f"{len(failures)} batches failed because the platform did not start an instance. Each was journaled "
             "in `failures.jsonl`; a retried batch was measured again and only the new attempt's samples are in "
             "`samples.jsonl`. A batch not retried ended that platform's measurement."), "",
            markdown_table(ordered.reset_index(drop=True))]


def _figures_section(summary: pd.DataFrame, figures: Mapping[str, list[Path]], run_dir: Path) -> list[str]:
    lines = ["## Figure 2", ""]
    for panel in PANELS:
        lines += [f"### {panel.title}", ""]
        paths = figures.get(panel.slug, [])
        png = next((p for p in paths if p.suffix == ".png"), None)
        if png is not None:
            svg = png.with_suffix(".svg")
            lines += [f"![Fig. 2{panel.key}]({png.relative_to(run_dir).as_posix()})", "",
                      f"(vector: `{svg.relative_to(run_dir).as_posix()}`, "
                      f"`{png.with_suffix('.pdf').relative_to(run_dir).as_posix()}`)", ""]
        lines += [figure2_markdown(summary, panel)]
    return lines


@dataclass(frozen=True)
class ReportSections:
    """The computed sections of a report, by name, so that :func:`render_report` can put them in reading order."""

    summary: Section
    outliers: Section
    overhead: Section
    conclusions: Section
    requirements: Section
    sensitivity: Section
    migration: Section = field(default_factory=lambda: Section(lines=[]))
    chain: Section = field(default_factory=lambda: Section(lines=[]))

    def all(self) -> list[Section]:
        return [self.summary, self.outliers, self.overhead, self.conclusions, self.requirements, self.sensitivity,
                self.migration, self.chain]


def render_report(run: Run, summary: pd.DataFrame, figures: Mapping[str, list[Path]],
                  sections: ReportSections) -> str:
    """The text of ``report.md`` (deterministic for the same run directory contents).

    The order is the reader's: the summary, Fig. 2, the conclusions beside the paper's, Section V and the
    overhead first; then the definitions and statistics; the data files and the run manifest last.
    """
    lines = [
        f"# vnflab run `{run.run_id}`",
        "",
        (
            "Generated by `vnflab report` from this run directory alone; every table and figure is derived "
            "from `samples.jsonl` (raw samples, never edited) and can be regenerated with the same command."
        ),
        "",
    ]
    lines += sections.summary.lines
    lines += _figures_section(summary, figures, run.paths.run_dir)
    lines += sections.conclusions.lines
    lines += sections.requirements.lines
    lines += sections.overhead.lines
    lines += sections.migration.lines
    lines += sections.chain.lines
    lines += ["## Metric definitions", "", METRIC_DEFINITIONS]
    lines += _stopping_section(run)
    lines += sections.sensitivity.lines
    lines += _failures_section(run)
    lines += sections.outliers.lines
    lines += ["## All points (summary table)", "",
              "CI = Student-t 95% CI of the mean, median CI = bootstrap 95% CI of the median "
              "(the CSV `tables/summary.csv` adds the bootstrap CIs of p95 and p99).", "",
              summary_markdown(summary)]
    lines += _data_section(run, summary)
    lines += _manifest_section(run, run.samples)
    lines += _files_section(run, figures)
    return "\n".join(lines).rstrip("\n") + "\n"


def _files_section(run: Run, figures: Mapping[str, list[Path]]) -> list[str]:
    tables = sorted(p.relative_to(run.paths.run_dir).as_posix() for p in run.paths.tables_dir.glob("*")
                    if p.is_file())
    drawn = sorted(p.relative_to(run.paths.run_dir).as_posix() for paths in figures.values() for p in paths)
    return ["## Appendix: files", "",
            "Every table above is also in `tables/` as CSV (full precision), Markdown and LaTeX; every figure "
            "in `figures/` as PNG, SVG and PDF. `report.html` is this report, self-contained.", "",
            "- tables: " + ", ".join(f"`{t}`" for t in tables),
            "- figures: " + ", ".join(f"`{f}`" for f in drawn), ""]


def _clear_stale(directory: Path, keep: set[Path]) -> None:
    """Remove files that an earlier build wrote and this one did not (e.g. a baseline no longer measured)."""
    if directory.is_dir():
        for path in directory.iterdir():
            if path.is_file() and path not in keep:
                path.unlink()


def build_report(run_dir: Path, options: ReportOptions | None = None) -> GeneratedFiles:
    """Regenerate tables, figures, ``report.md`` and ``report.html`` of ``run_dir`` from its raw files."""
    from vnflab.report.htmlreport import write_html

    opts = options or ReportOptions()
    assemble_manifest(Path(run_dir))  # a killed run never reached the play that merges the manifest's parts
    run = load_run(Path(run_dir))
    summary = summary_table(run.samples, run.points)
    tables = write_tables(summary, run.paths.tables_dir)
    figures = write_figures(summary, run.paths.figures_dir)
    view = overhead_view(run.samples, opts.baseline)
    figures["overhead"] = write_overhead_figure(view, run.paths.figures_dir)
    migration, figures[MIGRATION_SLUG] = migration_section(run.samples, run.paths.figures_dir, run.paths.run_dir)
    chain, figures[CHAIN_SLUG] = chain_section(run.samples, run.paths.figures_dir, run.paths.run_dir)
    sections = ReportSections(
        summary=summary_section(summary, run.samples),
        outliers=outliers_section(summary),
        overhead=overhead_section(view, figures["overhead"], run.paths.run_dir),
        conclusions=conclusions_section(run.samples, load_paper(opts.paper)),
        requirements=requirements_section(summary, load_requirements(opts.weights)),
        migration=migration,
        chain=chain,
        sensitivity=sensitivity_section(run.samples),
    )
    for section in sections.all():
        for stem, (frame, caption) in section.tables.items():
            tables.update(write_table_files(frame, run.paths.tables_dir / stem, caption))
    _clear_stale(run.paths.tables_dir, set(tables.values()))
    _clear_stale(run.paths.figures_dir, {p for paths in figures.values() for p in paths})
    text = render_report(run, summary, figures, sections)
    run.paths.report.write_text(text, encoding="utf-8", newline="\n")
    html = write_html(text, run.paths.run_dir, run.paths.report_html, title=f"vnflab run {run.run_id}")
    return GeneratedFiles(report=run.paths.report, html=html, tables=tables, figures=figures)
