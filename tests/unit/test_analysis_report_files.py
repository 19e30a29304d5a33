"""The whole report of a realistic synthetic run: every file, rebuilt bit for bit; HTML self-contained; options."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from synthetic_run import RUN_ID, write_run

from vnflab.cli import main
from vnflab.report.build import ReportOptions, build_report
from vnflab.report.htmlreport import markdown_to_html, split_row
from vnflab.report.latex import escape, latex_table

_RAW = ("samples.jsonl", "points.jsonl", "manifest.json", ".manifest.lock")


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name not in _RAW}


def test_every_derived_file_is_rebuilt_bit_for_bit(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / RUN_ID)
    build_report(run_dir)
    first = _snapshot(run_dir)
    for suffix in ("png", "svg", "pdf"):
        assert {"figures/fig2a_boot", "figures/fig2b_response", "figures/fig2c_memory", "figures/overhead"} <= {
            name.rsplit(".", 1)[0] for name in first if name.endswith(suffix)}
    for stem in ("summary", "fig2b_response", "overhead_baseline", "overhead_floor", "conclusions_pairwise",
                 "conclusions_paper_comparisons", "conclusions_paper_figures", "requirement_V-A"):
        for suffix in ("csv", "md", "tex"):
            assert f"tables/{stem}.{suffix}" in first, f"{stem}.{suffix}"
    assert b"CreationDate" not in first["figures/fig2a_boot.pdf"]
    for path in run_dir.rglob("*"):
        if path.is_file() and path.name not in _RAW:
            path.unlink()
    build_report(run_dir)
    second = _snapshot(run_dir)
    assert sorted(second) == sorted(first)
    changed = [name for name in first if first[name] != second[name]]
    assert changed == []


def test_report_holds_every_section_and_the_html_embeds_the_figures(tmp_path: Path) -> None:
    generated = build_report(write_run(tmp_path / RUN_ID))
    text = generated.report.read_text()
    # The reader's order: results first, then definitions and statistics, the manifest last.
    order = ("## Summary\n", "## Figure 2", "## Conclusions, recomputed", "#### The paper's comparisons",
             "## Management requirements (paper Section V)", "## Overhead", "## Metric definitions", "## Outliers",
             "## All points (summary table)", "## Appendix: data", "## Appendix: run manifest", "## Appendix: files")
    positions = [text.find(heading) for heading in order]
    assert -1 not in positions, [h for h, at in zip(order, positions, strict=True) if at < 0]
    assert positions == sorted(positions), "sections out of the reader's order"
    assert "xen boots 80.0% faster than docker in the best case (8 instances)" in text
    assert "No point has a value outside its fences." in text
    assert "stand-in for CoreOS" in text and "Mann-Whitney" in text and "bootstrap" in text
    html = generated.html.read_text()
    assert html.count('src="data:image/png;base64,') == 4  # three Fig. 2 panels and the overhead figure
    assert not re.search(r'(src|href)="(?!data:|#)', html), "the HTML must not load anything from outside"
    contents = html[html.index('<nav class="toc"'):html.index("</nav>")]
    assert html.index("<nav") < html.index('<h2 id="summary">')
    for anchor in ("summary", "figure-2", "conclusions-recomputed", "appendix-run-manifest"):
        assert f'href="#{anchor}"' in contents and f'id="{anchor}"' in html, anchor
    assert "<script" not in html and html.count("<table>") == text.count("\n|--")


def test_report_options_baseline_and_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(tmp_path / RUN_ID, platforms=("docker", "kvm"))
    generated = build_report(run_dir)
    assert "_Skipped: no baseline: no platform with engine or name `native`" in generated.report.read_text()
    assert not (run_dir / "tables" / "overhead_baseline.csv").exists()
    weights = json.loads((Path(__file__).parents[2] / "analysis/vnflab/data/requirements.json").read_text())
    weights["requirements"][0]["weights"] = {"boot": 3, "memory": 1}
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(weights))
    assert main(["report", "--baseline", "docker", "--weights", str(path), str(run_dir)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [str(run_dir / "report.md"), str(run_dir / "report.html")]
    text = (run_dir / "report.md").read_text()
    assert "Baseline platform: `docker`." in text and "boot time x3, server memory x1" in text
    assert (run_dir / "tables" / "overhead_baseline.csv").is_file()
    build_report(run_dir, ReportOptions())
    assert not (run_dir / "tables" / "overhead_baseline.csv").exists(), "stale tables are removed"


def test_html_and_latex_renderers() -> None:
    html = markdown_to_html("# T `x`\n\n| a | b |\n|---|---:|\n| p\\|q | 1 |\n\n- **one** `2`\n  more\n\n_none_\n",
                            Path("."), "t")
    assert '<h1 id="t-x">T <code>x</code></h1>' in html
    assert '<td>p|q</td><td class="num">1</td>' in html
    assert "<li><strong>one</strong> <code>2</code> more</li>" in html and "<p><em>none</em></p>" in html
    assert split_row("| a\\|b | c |") == ["a|b", "c"]
    assert escape("50% of x_1 & µs") == r"50\% of x\_1 \& \textmu{}s"
    import pandas as pd

    tex = latex_table(pd.DataFrame({"name": ["a_b"], "value": [1.5]}), "Cap")
    assert "\\begin{tabular}{lr}" in tex and "a\\_b & 1.500 \\\\" in tex and "\\caption{Cap}" in tex


def test_report_opens_with_who_is_lowest_and_by_how_much(tmp_path: Path) -> None:
    """Synthetic boot means at 8 instances: native 40 ms, xen 80 ms, docker and kvm higher: native leads by 2x."""
    text = build_report(write_run(tmp_path / RUN_ID)).report.read_text()
    summary = text[text.index("## Summary\n"):text.index("## Figure 2")]
    boot = next(line for line in summary.splitlines() if line.startswith("| (a) Boot time"))
    cells = [cell.strip() for cell in boot.strip("|").split("|")]
    assert cells[1:4] == ["8 instances", "ms", "native"] and cells[5] == "xen"
    assert cells[7].startswith("2.00 [") and cells[9] == "lower (95% CIs apart)"
    assert "Stand-ins" in summary and "stand-in for CoreOS" in summary
    headline = (tmp_path / RUN_ID / "tables" / "headline.csv").read_text().splitlines()
    assert len(headline) == 4 and headline[0].startswith("panel,quantity,mode,x,")


def test_report_summary_with_one_platform(tmp_path: Path) -> None:
    text = build_report(write_run(tmp_path / RUN_ID, platforms=("kvm",))).report.read_text()
    summary = text[text.index("## Summary\n"):text.index("## Figure 2")]
    assert summary.count("one platform measured") == 3
