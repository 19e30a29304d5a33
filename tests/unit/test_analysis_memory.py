"""Memory the right way round (vnflab.measure.memory): per-batch exact sums, the Fig. 2(c) primary quantity and its
source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_run import INSTANCES, LABELS, MEMORY_MB_PER_INSTANCE, OFFSETS_6, _record, write_run

from vnflab.measure.memory import batch_memory
from vnflab.report.tables import figure2_markdown, summary_table
from vnflab.stats.load import load_run
from vnflab.stats.panels import PANELS

MEMORY_PANEL = next(p for p in PANELS if p.metric == "memory")


@pytest.mark.parametrize(("args", "expected"), [
    # Docker: PSS of each container's cgroup processes and the cgroup charge; PSS is the primary
    ((2, 70.0, [2.5, 3.0], [0.5, 0.25], [None, None]),
     {"instances_pss_mb": 5.5, "instances_cgroup_mb": 0.75, "exact_used_mb": 5.5}),
    # QEMU: the QEMU processes' PSS
    ((1, 250.0, [210.0], [None], [None]), {"instances_pss_mb": 210.0, "exact_used_mb": 210.0}),
    # Xen: xl's per-domain memory plus dom0's MemAvailable delta
    ((2, 9.0, [None, None], [None, None], [8.0, 8.5]), {"domains_dom0_mb": 25.5, "exact_used_mb": 25.5}),
    # an instance without its figure: the sum is lost, not smaller
    ((2, 70.0, [2.5, None], [None, None], [None, None]), {"instances_pss_mb": None, "exact_used_mb": None}),
    ((2, None, [None, None], [None, None], [8.0, 8.5]), {"domains_dom0_mb": None, "exact_used_mb": None}),
    # no per-instance figure at all: nothing derived (the figure falls back to the server's delta)
    ((3, 70.0, [], [], []), {}),
])
def test_batch_memory_known_answers(args: tuple, expected: dict[str, float | None]) -> None:  # type: ignore[type-arg]
    assert batch_memory(*args) == expected


def _instance_records(run_id: str) -> list[dict[str, object]]:
    """Per-instance figures for docker (PSS, cgroup) and xen (hypervisor); kvm and native have none."""
    out = []
    for x in INSTANCES:
        for rep, offset in enumerate(OFFSETS_6):
            for instance in range(x):
                for platform, quantity, value in (
                        ("docker", "instance_pss_mb", 3.0 + 0.001 * offset),
                        ("docker", "instance_cgroup_mb", 0.5),
                        ("xen", "instance_hypervisor_mb", 8.0)):
                    record = _record(platform, "memory", quantity, x, value, rep, "MB", run_id=run_id)
                    out.append({**record, "repetition": rep, "instance": instance, "seq": 10 + instance})
    return out


def test_run_gets_exact_memory_and_the_figure_names_its_source(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "20250202T000000Z-3e3e3e")
    before = (run_dir / "samples.jsonl").read_text()
    with (run_dir / "samples.jsonl").open("a") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in _instance_records(run_dir.name))
    raw = (run_dir / "samples.jsonl").read_text()
    run = load_run(run_dir)
    assert (run_dir / "samples.jsonl").read_text() == raw and raw.startswith(before)  # nothing written back
    exact = run.samples[run.samples["quantity"] == "exact_used_mb"]
    assert set(exact["platform"]) == {"docker", "xen"}
    docker = exact[(exact["platform"] == "docker") & (exact["x"] == 4)]
    assert len(docker) == 6 and docker["value"].mean() == pytest.approx(12.0)  # 4 instances x 3 MB PSS
    xen = exact[(exact["platform"] == "xen") & (exact["x"] == 2)]
    # 2 domains x 8 MB + dom0's delta, the synthetic server_used_mb of 8 MB per instance, exactly per batch
    assert sorted(xen["value"]) == pytest.approx(sorted(16.0 + 16.0 * (1 + o) for o in OFFSETS_6))
    summary = summary_table(run.samples, run.points)
    text = figure2_markdown(summary, MEMORY_PANEL)
    assert "of `exact_used_mb|server_used_mb` (MB)" in text and "`server` columns are `server_used_mb`" in text
    assert f"- `docker`: {LABELS['docker']}; `exact_used_mb`: sum of the instances' PSS (cgroup charge" in text
    assert f"- `xen`: {LABELS['xen']}; `exact_used_mb`: sum of xl's per-domain memory + dom0's" in text
    # kvm and native report no per-instance figure: their line is the server's delta, and says so
    assert f"- `kvm`: {LABELS['kvm']}; `server_used_mb`: the server's MemAvailable delta" in text
    header = text.splitlines()[2]
    assert "| docker server |" in header and "| kvm server |" not in header
    kvm_at_4 = summary[(summary["platform"] == "kvm") & (summary["quantity"] == "server_used_mb") & (summary["x"] == 4)]
    assert kvm_at_4["mean"].iloc[0] == pytest.approx(MEMORY_MB_PER_INSTANCE["kvm"] * 4)


def test_runs_without_per_instance_figures_keep_the_server_delta(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "20250202T000000Z-4e4e4e"))
    assert "exact_used_mb" not in set(run.samples["quantity"])
    text = figure2_markdown(summary_table(run.samples, run.points), MEMORY_PANEL)
    assert "of `server_used_mb` (MB)" in text and "server` columns" not in text
