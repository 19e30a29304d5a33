"""Overhead view: ratios and differences against a native baseline and the direct floor, known answers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from synthetic_run import BOOT_MS_PER_INSTANCE, LABELS, RUN_ID, rtt_direct, rtt_proxy, write_run

from vnflab.stats.load import load_run
from vnflab.stats.overhead import overhead_view, welch_ci


@pytest.fixture
def samples(tmp_path: Path) -> pd.DataFrame:
    return load_run(write_run(tmp_path / RUN_ID)).samples


def test_every_platform_over_the_native_baseline(samples: pd.DataFrame) -> None:
    view = overhead_view(samples)
    assert view.baseline_platforms == ("native",) and view.notes == []
    table = view.versus_baseline
    assert set(table["platform"]) == {"xen", "docker", "kvm"}  # the baseline is not compared with itself
    boot = table[(table["metric"] == "boot")].set_index(["platform", "x"])
    for platform in ("xen", "docker", "kvm"):
        expected = BOOT_MS_PER_INSTANCE[platform] / BOOT_MS_PER_INSTANCE["native"]
        row = boot.loc[(platform, 4)]
        assert row["over"] == pytest.approx(expected)
        assert row["over_ci_low"] <= expected <= row["over_ci_high"]
        assert row["minus"] == pytest.approx((BOOT_MS_PER_INSTANCE[platform] - BOOT_MS_PER_INSTANCE["native"]) * 4)
        assert row["minus_ci_low"] < row["minus"] < row["minus_ci_high"]
    response = table[table["metric"] == "response"].set_index(["platform", "x"])
    assert response.loc[("kvm", 65507), "over"] == pytest.approx(rtt_proxy("kvm", 65507) / rtt_proxy("native", 65507))


def test_response_over_the_direct_floor(samples: pd.DataFrame) -> None:
    floor = overhead_view(samples).versus_floor.set_index(["platform", "x"])
    assert set(floor.index.get_level_values(0)) == set(LABELS)
    row = floor.loc[("docker", 64)]
    assert row["minus"] == pytest.approx(rtt_proxy("docker", 64) - rtt_direct(64))
    assert row["over"] == pytest.approx(rtt_proxy("docker", 64) / rtt_direct(64))
    assert row["reference"] == "docker direct"


def test_no_baseline_is_skipped_with_a_note(tmp_path: Path) -> None:
    samples = load_run(write_run(tmp_path / RUN_ID, platforms=("docker", "kvm"))).samples
    view = overhead_view(samples)
    assert view.versus_baseline.empty and view.baseline_platforms == ()
    assert "no platform with engine or name `native`" in view.notes[0] and "docker, kvm" in view.notes[0]
    assert not view.versus_floor.empty  # the floor needs no baseline


def test_baseline_is_selectable_by_engine_or_name(samples: pd.DataFrame) -> None:
    by_engine = overhead_view(samples, "xen")
    assert by_engine.baseline_platforms == ("xen",) and "native" in set(by_engine.versus_baseline["platform"])
    relabelled = samples.assign(label=samples["label"].str.replace("docker/", "podman/"))
    by_name = overhead_view(relabelled, "docker")
    assert by_name.baseline_platforms == ("docker",)


def test_welch_ci_known_answer() -> None:
    import numpy as np

    low, high = welch_ci(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    # t(0.975, 4) * sqrt(1/3 + 1/3)
    assert low == pytest.approx(-high) and high == pytest.approx(2.7764 * (2 / 3) ** 0.5, abs=1e-3)
