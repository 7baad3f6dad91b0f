"""``regimebench-report SWEEP_DIR... [--out DIR]``: build a report from run records.

Reads only ``record.json`` files, so it can be re-run at will on any set of sweep folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports.build import build_report, unreadable_records
from reports.collect import DuplicateRunsError, NoRecordsError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the report, print where it is; exit 2 on unusable input."""
    parser = argparse.ArgumentParser(prog="regimebench-report", description=__doc__)
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="sweep or run folders")
    parser.add_argument("--out", type=Path, help="report folder (default: FIRST_DIR/report)")
    parser.add_argument(
        "--confusion-budget",
        action="append",
        metavar="PER_CLASS",
        help="budget of the per-class accuracy and confusion matrices (repeatable; default: the "
        "smallest and the largest)",
    )
    args = parser.parse_args(argv)
    out = args.out or args.sweep_dirs[0] / "report"
    try:
        index = build_report(args.sweep_dirs, out, args.confusion_budget)
    except (NoRecordsError, DuplicateRunsError) as err:
        print(f"regimebench-report: error: {err}", file=sys.stderr)
        return 2
    for path, why in unreadable_records(out):
        print(f"regimebench-report: left out unreadable {path}: {why}", file=sys.stderr)
    print(f"report: {index}")
    return 0


def entry() -> None:
    """Console-script wrapper: the exit status of :func:`main`."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
