"""Handler of ``vidcap filter`` (imported when the command runs; the parser: ``vidcap.cli.filter``)."""
from __future__ import annotations

from vidcap.filter.run import filter_results, format_report, report_path


def cmd_filter(args) -> int:
    report = filter_results(args.results, args.output, args.where, media_root=args.media_root,
                            batch_size=args.batch_size)
    print(format_report(report))
    print(f"report: {report_path(args.output)}")
    return 0
