"""Recomputed conclusions: pairwise statements, the paper's comparisons and figures, row mapping."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from synthetic_run import RUN_ID, write_run

from vnflab.report.conclusions import nearest_x, pairwise_statements, paper_comparisons, paper_figures
from vnflab.report.paper import load_paper, match_rows
from vnflab.stats.load import load_run


@pytest.fixture
def samples(tmp_path: Path) -> pd.DataFrame:
    return load_run(write_run(tmp_path / RUN_ID)).samples


def test_paper_data_is_complete_and_cited() -> None:
    paper = load_paper()
    assert set(paper.row_engines) == {"ClickOS", "CoreOS", "OSv"}
    ids = {f.id for f in paper.figures}
    assert {"clickos-boot-128", "clickos-response-64k", "coreos-memory-128", "osv-memory-128"} <= ids
    values = {f.id: (f.relation, f.value, f.unit) for f in paper.figures}
    assert values["osv-memory-128"] == (">", 3500, "MB") and values["clickos-response-64k"] == ("~", 160, "us")
    comparisons = {c.id: c for c in paper.comparisons}
    assert comparisons["boot-clickos-coreos"].value == 18.61 and comparisons["boot-clickos-coreos"].x == "best"
    assert comparisons["memory-coreos-clickos"].value == 42.34
    assert all(f.section and f.quote for f in paper.figures + paper.comparisons)  # type: ignore[operator]


def test_rows_map_by_stand_in_label_then_engine(samples: pd.DataFrame) -> None:
    matches = {m.platform: m for m in match_rows(samples, load_paper())}
    assert set(matches) == {"xen", "docker", "kvm"}  # native is no paper row
    assert (matches["xen"].row, matches["xen"].stand_in) == ("ClickOS", False)
    assert (matches["docker"].row, matches["docker"].stand_in) == ("CoreOS", True)
    assert matches["kvm"].how == "label: stand-in for OSv"


def test_pairwise_statements_known_answers(samples: pd.DataFrame) -> None:
    table = pairwise_statements(samples)
    assert len(table) == 6 * 3  # 4 platforms -> 6 pairs, 3 quantities
    boot = table[(table["metric"] == "boot") & (table["subject"] == "xen") & (table["reference"] == "docker")]
    row = boot.iloc[0]
    assert row["value"] == pytest.approx(80.0)  # 10 vs 50 ms per instance at every x
    assert row["ci_low"] <= 80.0 <= row["ci_high"] and row["p_value"] < 0.01
    assert row["statement"].startswith("xen boots 80.0% faster than docker in the best case")
    memory = table[(table["metric"] == "memory") & (table["subject"] == "docker") & (table["reference"] == "xen")]
    assert memory.iloc[0]["value"] == pytest.approx(37.5) and memory.iloc[0]["x"] == 8
    assert "uses 37.5% less memory than xen at 8 instances" in memory.iloc[0]["statement"]
    response = table[(table["metric"] == "response") & (table["subject"] == "docker")
                     & (table["reference"] == "kvm")].iloc[0]
    assert response["x"] == 65507 and "responds" in response["statement"] and "times faster than kvm" in \
        response["statement"]


def test_paper_comparisons_beside_measured(samples: pd.DataFrame) -> None:
    table = paper_comparisons(samples, load_paper()).set_index("id")
    boot = table.loc["boot-clickos-coreos"]
    assert boot["measured"] == "80.0% lower" and boot["verdict"] == "same direction, significant"
    assert "xen (real ClickOS) vs docker (stand-in CoreOS)" == boot["measured with"]
    memory = table.loc["memory-coreos-clickos"]
    assert memory["measured"] == "37.5% lower" and memory["x"] == "8 (paper: 128; not measured)"
    osv = table.loc["response-osv-clickos"]
    assert osv["x"].startswith("65507") and osv["verdict"] == "same direction, significant"


def test_paper_comparisons_say_when_a_row_was_not_measured(tmp_path: Path) -> None:
    samples = load_run(write_run(tmp_path / RUN_ID, platforms=("docker", "kvm"))).samples
    table = paper_comparisons(samples, load_paper()).set_index("id")
    assert table.loc["boot-clickos-coreos", "verdict"] == "not measured: no platform for ClickOS"
    figures = paper_figures(samples, load_paper()).set_index("id")
    assert figures.loc["clickos-boot-128", "comparison"] == "not measured: no platform for ClickOS"
    osv = figures.loc["osv-memory-128"]
    assert osv["measured mean"] == "800.0 MB" and osv["comparison"] == "does not hold here (at another x)"


def test_nearest_x_on_a_log_scale() -> None:
    assert nearest_x([64, 1024, 65507], 65536) == 65507
    assert nearest_x([1, 4, 8], 128) == 8
    assert nearest_x([2, 8], 4) == 8  # equal log distance: the larger
