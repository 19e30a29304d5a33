"""``vnflab`` command line: ``new-run``, ``manifest``, ``resume``, ``summary``, ``report``, ``compare``, ``calibrate``,
``run``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vnflab import __version__
from vnflab.metrics import METRICS

if TYPE_CHECKING:
    from vnflab.stats.compare import CompareOptions


def _new_run(args: argparse.Namespace) -> int:
    from vnflab.measure.journal import utc_timestamp
    from vnflab.measure.manifest import merge_manifest
    from vnflab.measure.rundir import create_run_dir

    run_dir = create_run_dir(Path(args.results_dir))
    merge_manifest(run_dir, other={"run_id": run_dir.name, "created": utc_timestamp(), "vnflab_version": __version__})
    print(run_dir)
    return 0


def _manifest(args: argparse.Namespace) -> int:
    from vnflab.measure.manifest import assemble_manifest
    from vnflab.measure.rundir import RunPaths

    run_dir = Path(args.run_dir)
    assemble_manifest(run_dir)
    print(RunPaths(run_dir).manifest)
    return 0


def _resume(args: argparse.Namespace) -> int:
    from vnflab.measure.resume import resume_run

    parameters = json.loads(args.parameters) if args.parameters else None
    print(resume_run(Path(args.run_dir), parameters))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from vnflab.report.tables import summary_markdown, summary_table
    from vnflab.stats.load import load_run

    run = load_run(Path(args.run_dir))
    summary = summary_table(run.samples, run.points)
    sys.stdout.write(summary.to_csv(index=False, lineterminator="\n") if args.csv else summary_markdown(summary))
    return 0


def _report(args: argparse.Namespace) -> int:
    from vnflab.report.build import ReportOptions, build_report

    options = ReportOptions(baseline=args.baseline, weights=Path(args.weights) if args.weights else None,
                            paper=Path(args.paper) if args.paper else None)
    generated = build_report(Path(args.run_dir), options)
    print(generated.report)
    print(generated.html)
    for path in generated.tables.values():
        print(path)
    for paths in generated.figures.values():
        for path in paths:
            print(path)
    return 0


def _compare_sides(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """A's and B's run directories: ``A B``, ``A1 A2 -- B1 B2`` or repeated ``--a``/``--b``."""
    positional = list(args.runs)
    after = list(getattr(args, "runs_b_after_separator", None) or [])
    if args.a or args.b:
        if positional or after:
            raise ValueError("give the runs either as positional arguments or with --a/--b, not both")
        if not args.a or not args.b:
            raise ValueError("--a and --b need at least one run each")
        return list(args.a), list(args.b)
    if after:
        if not positional:
            raise ValueError("no run of A before '--'")
        return positional, after
    if len(positional) != 2:
        raise ValueError("expected RUN_A RUN_B, or A1 A2 ... -- B1 B2 ..., or --a RUN ... --b RUN ...")
    return positional[:1], positional[1:]


def _compare_options(args: argparse.Namespace) -> CompareOptions:
    from vnflab.stats.compare import CompareOptions
    from vnflab.stats.runspread import default_tolerances, load_tolerances, merged, parse_override

    files = [load_tolerances(Path(path)) for path in args.tolerances]
    overrides = dict(parse_override(item) for item in args.tolerance)
    tolerances = merged(default_tolerances(), *files, overrides)
    return CompareOptions(alpha=args.alpha, min_change_pct=args.min_change, correction=args.correction,
                          cannot_tell_pct=args.cannot_tell, tolerances=tolerances)


def _compare(args: argparse.Namespace) -> int:
    from vnflab.stats.compare import compare_markdown, compare_runs, regressions
    from vnflab.stats.load import load_run

    side_a, side_b = _compare_sides(args)
    runs_a = [load_run(Path(path)) for path in side_a]
    runs_b = [load_run(Path(path)) for path in side_b]
    options = _compare_options(args)
    table = compare_runs([run.samples for run in runs_a], [run.samples for run in runs_b], options)
    name_a = ", ".join(run.run_id for run in runs_a)
    name_b = ", ".join(run.run_id for run in runs_b)
    markdown = compare_markdown(table, name_a, name_b, options)
    if args.out:
        from vnflab.report.table_export import write_table_files, write_text

        out = Path(args.out)
        write_table_files(table, out / "compare", f"Run comparison {name_a} -> {name_b}")
        write_text(out / "compare.md", markdown)
    sys.stdout.write(table.to_csv(index=False, lineterminator="\n") if args.csv else markdown)
    found = regressions(table)
    if args.fail_on_regression and not found.empty:
        print(f"vnflab compare: {len(found)} regression(s)", file=sys.stderr)
        return 3
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from vnflab.markdown import markdown_table
    from vnflab.stats.load import load_run
    from vnflab.stats.runspread import calibrate, tolerances_json

    if len(args.runs) < 2 or len(args.runs) % 2:
        raise ValueError("expected pairs of runs of the same code: A1 B1 [A2 B2 ...]")
    runs = [load_run(Path(path)) for path in args.runs]
    pairs = list(zip(runs[::2], runs[1::2], strict=True))
    table = calibrate([(a.samples, b.samples) for a, b in pairs])
    names = "; ".join(f"{a.run_id} / {b.run_id}" for a, b in pairs)
    source = f"vnflab calibrate on the same-code pairs {names} (max |change| rounded up to 5%)"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(tolerances_json(table, source), encoding="utf-8")
    sys.stdout.write(f"# vnflab calibrate: {names}\n\nRun-to-run tolerances per metric/quantity "
                     f"(`compare --tolerances FILE`): the largest |change| of the pairs' points (`rtt_proxy_us` "
                     f"beyond its direct path), rounded up to 5%, at least 5%.\n\n{markdown_table(table)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import json

    from vnflab.run.labrun import PROJECT_DIR, RunOptions, run_lab

    extravars = {}
    for item in args.extra_vars:
        if item.startswith("{"):
            extravars.update(json.loads(item))
        else:
            key, _, value = item.partition("=")
            extravars[key] = value
    options = RunOptions(
        project_dir=Path(args.project_dir) if args.project_dir else PROJECT_DIR,
        inventory=args.inventory, profile=args.profile, metrics=tuple(args.metric),
        results_dir=Path(args.results_dir) if args.results_dir else PROJECT_DIR / "results",
        extravars=extravars, interval=args.interval, resume=args.resume,
    )
    return run_lab(options)


def _bench(args: argparse.Namespace) -> int:
    from vnflab.run import bench

    run_dir = Path(args.run_dir) if args.run_dir else None
    summary = bench.summarize(bench.read_timing(Path(args.timing)), bench.read_points(run_dir))
    summary["run_dir"] = str(run_dir) if run_dir else None
    summary["run_id"] = run_dir.name if run_dir else None
    for item in args.extra:
        key, _, value = item.partition("=")
        summary.setdefault("context", {})[key] = value
    if args.phase:
        for item in args.phase:  # phases timed outside Ansible (the install), prepended
            name, _, seconds = item.partition("=")
            summary["phases"].insert(0, {"phase": name, "wall_s": round(float(seconds), 3)})
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        Path(args.out).with_suffix(".md").write_text(bench.render_table(summary), encoding="utf-8")
    print(bench.render_table(summary), end="")
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

    resume = commands.add_parser(
        "resume", help="check that a killed run in RUN_DIR can be resumed, record the resume, say what is left")
    resume.add_argument("run_dir", metavar="RUN_DIR")
    resume.add_argument("--parameters", metavar="JSON",
                        help="the resuming run's parameters; refused if its sweep differs from the one recorded")
    resume.set_defaults(handler=_resume)

    report = commands.add_parser("report", help="regenerate tables, figures and report.md of a run")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.add_argument("--baseline", default="native",
                        help="engine (label) or platform name of the overhead baseline (default: native)")
    report.add_argument("--weights", metavar="FILE", help="requirement weights JSON (format of data/requirements.json)")
    report.add_argument("--paper", metavar="FILE", help="paper figures JSON (format of data/paper.json)")
    report.set_defaults(handler=_report)

    compare = commands.add_parser(
        "compare", help="compare runs point by point: A B (one run a side: Mann-Whitney within the runs and a "
                        "run-to-run tolerance), or A1 A2 -- B1 B2 (the run as the unit: t test of run medians)")
    compare.add_argument("runs", nargs="*", metavar="RUN",
                         help="RUN_A RUN_B, or A1 A2 ... -- B1 B2 ... (several runs a side)")
    compare.add_argument("--a", action="append", default=[], metavar="RUN", help="a run of side A (repeatable)")
    compare.add_argument("--b", action="append", default=[], metavar="RUN", help="a run of side B (repeatable)")
    compare.add_argument("--tolerances", action="append", default=[], metavar="FILE",
                         help="run-to-run tolerances (JSON, as vnflab calibrate --out writes) over the defaults")
    compare.add_argument("--tolerance", action="append", default=[], metavar="METRIC/QUANTITY=PCT",
                         help="one run-to-run tolerance, e.g. boot/all_ms=20 (repeatable; used with one run a side)")
    compare.add_argument("--csv", action="store_true", help="CSV instead of Markdown on stdout")
    compare.add_argument("--out", metavar="DIR", help="also write compare.{csv,md,tex} into DIR")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level of the adjusted p")
    compare.add_argument("--correction", choices=["holm", "bh"], default="holm",
                         help="holm: Holm within each platform and metric (default); bh: Benjamini-Hochberg FDR "
                              "over all rows of the run")
    compare.add_argument("--cannot-tell", type=float, default=20.0, metavar="PCT",
                         help="a point not flagged whose minimum detectable change exceeds PCT %% reads "
                              "'cannot tell at this n' (default: 20)")
    compare.add_argument("--min-change", type=float, default=0.0, metavar="PCT",
                         help="smallest change of the median, in %%, that counts as a regression or improvement")
    compare.add_argument("--fail-on-regression", action="store_true", help="exit 3 when a point regressed")
    compare.set_defaults(handler=_compare)

    calibrate = commands.add_parser(
        "calibrate", help="run-to-run tolerances for compare from pairs of runs of the same code")
    calibrate.add_argument("runs", nargs="+", metavar="RUN", help="A1 B1 [A2 B2 ...]: pairs of same-code runs")
    calibrate.add_argument("--out", metavar="FILE.json", help="write the tolerances for compare --tolerances")
    calibrate.set_defaults(handler=_calibrate)

    bench = commands.add_parser("bench", help="phases, Ansible's share and point times of a run (vnflab_timing file)")
    bench.add_argument("timing", metavar="TIMING_JSONL", help="what the vnflab_timing callback wrote")
    bench.add_argument("--run-dir", help="the run directory (for per-point times from points.jsonl)")
    bench.add_argument("--out", metavar="FILE.json", help="write the summary as JSON (and FILE.md, the table)")
    bench.add_argument("--phase", action="append", default=[], metavar="NAME=SECONDS",
                       help="a phase timed outside Ansible (e.g. install=41.2), listed first")
    bench.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE", help="context recorded as is")
    bench.set_defaults(handler=_bench)

    run = commands.add_parser("run", help="run site.yml through ansible-runner with progress, then the report")
    swept = [name for name, metric in METRICS.items() if metric.sweep_variable]  # the profile sweeps these
    run.add_argument("--metric", action="append", default=[], choices=swept,
                     help="measure only this metric (repeatable; default: all)")
    run.add_argument("--inventory", "-i", help="inventory (default: the one in ansible.cfg, the local lab)")
    run.add_argument("--profile", default="default", help="playbooks/profiles/<PROFILE>.yml (default: default)")
    run.add_argument("--results-dir", help="where the run directory is created (default: results/)")
    run.add_argument("--project-dir", help=argparse.SUPPRESS)
    run.add_argument("--extra-vars", "-e", action="append", default=[], help="KEY=VALUE or JSON, as ansible-playbook")
    run.add_argument("--interval", type=float, default=5.0, help="seconds between progress lines")
    run.add_argument("--resume", metavar="RUN_ID",
                     help="resume the killed run RESULTS_DIR/RUN_ID (or a run directory): skip its finished points, "
                          "continue the one it was cut in, with the same profile and variables")
    run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vnflab`` console script; returns the exit status."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    after: list[str] = []
    if tokens[:1] == ["compare"] and "--" in tokens:  # compare A1 A2 -- B1 B2: argparse would merge the sides
        split = tokens.index("--")
        tokens, after = tokens[:split], tokens[split + 1:]
    args = build_parser().parse_args(tokens)
    if after:
        args.runs_b_after_separator = after
    try:
        return int(args.handler(args))
    except (OSError, ValueError) as exc:  # a missing run directory, a full disk, a bad input: one line, no trace
        print(f"vnflab {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
