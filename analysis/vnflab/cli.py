"""``vnflab`` command line: ``new-run``, ``summary``, ``report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vnflab import __version__


def _new_run(args: argparse.Namespace) -> int:
    from vnflab.journal import utc_timestamp
    from vnflab.manifest import merge_manifest
    from vnflab.rundir import create_run_dir

    run_dir = create_run_dir(Path(args.results_dir))
    merge_manifest(run_dir, other={"run_id": run_dir.name, "created": utc_timestamp(), "vnflab_version": __version__})
    print(run_dir)
    return 0


def _manifest(args: argparse.Namespace) -> int:
    import json

    from vnflab.manifest import merge_manifest

    run_dir = Path(args.run_dir)
    parts = sorted((run_dir / "manifest.d").glob("*.json"))
    for part in parts:
        merge_manifest(run_dir, other=json.loads(part.read_text(encoding="utf-8")))
    print(run_dir / "manifest.json")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from vnflab.load import load_run
    from vnflab.tables import summary_markdown, summary_table

    run = load_run(Path(args.run_dir))
    summary = summary_table(run.samples, run.points)
    sys.stdout.write(summary.to_csv(index=False, lineterminator="\n") if args.csv else summary_markdown(summary))
    return 0


def _report(args: argparse.Namespace) -> int:
    from vnflab.report import build_report

    generated = build_report(Path(args.run_dir))
    print(generated.report)
    for path in generated.tables.values():
        print(path)
    for paths in generated.figures.values():
        for path in paths:
            print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vnflab", description="vnflab controller tools: runs, summaries, reports.")
    parser.add_argument("--version", action="version", version=f"vnflab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    new_run = commands.add_parser("new-run", help="create results/<run-id>/ and print its path")
    new_run.add_argument("results_dir", metavar="RESULTS_DIR")
    new_run.set_defaults(handler=_new_run)

    manifest = commands.add_parser("manifest", help="merge the parts in RUN_DIR/manifest.d/ into manifest.json")
    manifest.add_argument("run_dir", metavar="RUN_DIR")
    manifest.set_defaults(handler=_manifest)

    summary = commands.add_parser("summary", help="print the summary table of a run")
    summary.add_argument("run_dir", metavar="RUN_DIR")
    summary.add_argument("--csv", action="store_true", help="CSV instead of Markdown")
    summary.set_defaults(handler=_summary)

    report = commands.add_parser("report", help="regenerate tables, figures and report.md of a run")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.set_defaults(handler=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vnflab`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"vnflab {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
