"""Every series of a Fig. 2 panel is drawn: the proxied line and the direct floor."""

from __future__ import annotations

import pandas as pd

from vnflab.report.plots import plot_panel
from vnflab.report.tables import summary_table
from vnflab.stats.panels import PANELS


def synthetic_response_samples() -> pd.DataFrame:
    rows = []
    for platform, label, scale in (("docker", "docker/debian12-iptables (native, stand-in for CoreOS)", 1.0),
                                   ("kvm", "kvm/linux-microvm (tcg, stand-in for OSv)", 10.0)):
        for quantity, factor in (("rtt_proxy_us", 4.0), ("rtt_direct_us", 1.0)):
            for x in (64, 1472, 65507):
                for seq in range(5):
                    rows.append({"run_id": "r", "platform": platform, "label": label, "metric": "response",
                                 "quantity": quantity, "x": x, "x_unit": "B",
                                 "value": scale * factor * (10 + x / 1000) + seq, "unit": "us", "status": "ok",
                                 "repetition": 0, "instance": None, "seq": seq, "time": "t", "host": "a",
                                 "mode": "icmp"})
    return pd.DataFrame(rows)


def test_response_panel_draws_each_platform_and_its_floor() -> None:
    panel = next(p for p in PANELS if p.slug == "fig2b_response")
    figure = plot_panel(summary_table(synthetic_response_samples()), panel)
    assert figure is not None
    ax = figure.axes[0]
    drawn = {tuple(line.get_ydata()) for line in ax.get_lines() if len(line.get_xdata()) == 3}
    summary = summary_table(synthetic_response_samples())
    for platform in ("docker", "kvm"):
        for quantity in ("rtt_proxy_us", "rtt_direct_us"):
            means = summary[(summary.platform == platform) & (summary.quantity == quantity)].sort_values("x")["mean"]
            assert tuple(means) in drawn, f"{platform} {quantity} not drawn"
