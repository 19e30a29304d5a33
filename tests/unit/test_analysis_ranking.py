"""Section V ranking: CI-overlap ties, weights from a data file, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from synthetic_run import RUN_ID, write_run

from vnflab.report.requirements import load_requirements
from vnflab.report.tables import summary_table
from vnflab.stats.load import load_run
from vnflab.stats.ranking import MetricRef, ci_ranks, combine, rank_metric

BOOT = MetricRef("boot", "all_ms", "boot time")
MEMORY = MetricRef("memory", "server_used_mb", "server memory")


def test_ci_ranks_tie_overlapping_intervals() -> None:
    table = pd.DataFrame({"ci_low": [1.0, 1.5, 5.0, float("nan")], "ci_high": [2.0, 2.5, 6.0, float("nan")]})
    # rows 0 and 1 overlap (tie at 1); row 2 is above both; NaN overlaps everything
    assert list(ci_ranks(table)) == [1, 1, 3, 1]


@pytest.fixture
def summary(tmp_path: Path) -> pd.DataFrame:
    run = load_run(write_run(tmp_path / RUN_ID))
    return summary_table(run.samples, run.points)


def test_weights_change_the_order(summary: pd.DataFrame) -> None:
    boot, _ = rank_metric(summary, BOOT)
    memory, _ = rank_metric(summary, MEMORY)
    # boot at 8: native 40 < xen 80 < docker 400 < kvm 3200; memory: native 8 < docker 40 < xen 64 < kvm 800
    equal = combine(boot + memory)
    assert list(zip(equal["platform"], equal["overall"], strict=True)) == [
        ("native", 1), ("docker", 2), ("xen", 2), ("kvm", 4)]
    boot_heavy = combine(boot + memory, {"boot": 3.0, "memory": 1.0})
    assert list(boot_heavy["platform"])[:3] == ["native", "xen", "docker"]
    assert boot_heavy.set_index("platform").loc["xen", "mean_rank"] == pytest.approx((3 * 2 + 3) / 4)
    with pytest.raises(ValueError):
        combine(boot + memory, {"boot": 0.0, "memory": 0.0})


def test_overlapping_cis_are_ties(summary: pd.DataFrame) -> None:
    near = summary.copy()
    rows = (near["metric"] == "boot") & (near["x"] == 8) & (near["platform"] == "xen")
    near.loc[rows, ["mean", "ci_low", "ci_high"]] = [45.0, 38.0, 52.0]  # overlaps native's [39, 41]
    ranking, _ = rank_metric(near, BOOT)
    ranks = dict(zip(ranking[0].table["platform"], ranking[0].table["rank"], strict=True))
    assert ranks["native"] == ranks["xen"] == 1 and ranks["docker"] == 3
    assert ("native", "xen") in ranking[0].overlaps


def test_default_weights_and_a_custom_file(tmp_path: Path) -> None:
    spec = load_requirements()
    assert [r.section for r in spec.requirements] == ["V-A", "V-B", "V-B-chain", "V-C", "V-D", "V-mig"]
    assert spec.requirements[0].weights == {"boot": 1.0, "memory": 1.0}
    assert [m.metric for m in spec.requirements[3].metrics] == ["response"]
    assert spec.requirements[2].weights == {"boot": 1.0, "memory": 1.0, "chain": 1.0}
    custom = json.loads((Path(__file__).parents[2] / "analysis/vnflab/data/requirements.json").read_text())
    custom["requirements"][0]["weights"] = {"boot": 2, "memory": 0}
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(custom))
    loaded = load_requirements(path)
    assert [m.metric for m in loaded.requirements[0].metrics] == ["boot"]
    assert loaded.requirements[0].weights_text() == "boot time x2"
    custom["requirements"][1]["weights"] = {"boot": -1}
    path.write_text(json.dumps(custom))
    with pytest.raises(ValueError, match="must be a number >= 0"):
        load_requirements(path)
    custom["requirements"][1]["weights"] = {"cpu": 1}
    path.write_text(json.dumps(custom))
    with pytest.raises(ValueError, match="unknown metric 'cpu'"):
        load_requirements(path)
