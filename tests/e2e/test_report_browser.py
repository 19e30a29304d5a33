"""report.html opened in a real browser (headless Chromium): figures decode, every table and section renders.

Runs on a realistic synthetic run directory built in the test (four platforms: a native baseline, a real
Xen row and two stand-ins), so it needs no lab; the local-lab end-to-end test applies the same checks
to the report of a real run (tests/e2e/test_local_lab.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from browser import check_report_in_browser, find_browser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from synthetic_run import RUN_ID, write_run  # noqa: E402

pytestmark = pytest.mark.skipif(find_browser() is None, reason="no Chromium (scripts/install.sh installs it)")

def test_synthetic_report_renders_in_chromium(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / RUN_ID)
    dom = check_report_in_browser(run_dir, tmp_path, {"native", "xen", "docker", "kvm"})
    assert "xen boots 80.0% faster than docker in the best case (8 instances)" in dom
    assert "Baseline platform: <code>native</code>." in dom
    assert "stand-in for CoreOS" in dom and "same direction, significant" in dom
