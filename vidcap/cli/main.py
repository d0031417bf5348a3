"""The ``vidcap`` parser, assembled from the command groups, and the one place that turns a failure
into an exit code and a last line on stderr."""
from __future__ import annotations

import argparse
import errno
import logging
import sys

from vidcap.cli import dev, export, filter, manifest, report, workflow
from vidcap.errors import ConfigError, GatherError, RunnerFatal, TableError, say_fatal
from vidcap.io.locks import LockBusy

DESCRIPTION = "The ``vidcap`` command line. Each subcommand is a thin wrapper over a package function."

# each adds its subcommands, in the order `vidcap --help` lists them
COMMAND_GROUPS = (manifest.add_commands, workflow.add_stage_jobs, workflow.add_gather, workflow.add_status,
                  report.add_commands, export.add_commands, filter.add_commands, workflow.add_run, dev.add_commands)


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def build_parser() -> argparse.ArgumentParser:
    """The whole parser; each subcommand's ``func`` takes the parsed args and returns the exit code."""
    parser = argparse.ArgumentParser(prog="vidcap", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMAND_GROUPS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. A failure ends with one line ``vidcap <command>: error: <reason>`` on stderr
    (the last line of a job's log, which the workflow shows on the console): 2 for bad input or
    config, 3 for a runner that cannot work (credentials, model), 1 for anything else (with its
    traceback in the log)."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)

    def fail(message: str, code: int) -> int:
        say_fatal(f"vidcap {args.command}: error: {message}")   # on the console when the log is full
        return code

    try:
        return args.func(args)
    except (TableError, ConfigError, GatherError, LockBusy, FileNotFoundError) as exc:
        return fail(str(exc), 2)
    except RunnerFatal as exc:
        return fail(str(exc), 3)
    except OSError as exc:
        if exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
            where = exc.filename or getattr(args, "out", None) or (getattr(args, "output", None) or [""])[0]
            return fail(f"no space left on device: {where}", 1)
        logging.exception("%s failed", args.command)
        return fail(f"{type(exc).__name__}: {exc}", 1)
    except Exception as exc:  # one readable last line; the traceback is logged above it
        logging.exception("%s failed", args.command)
        return fail(f"{type(exc).__name__}: {exc}", 1)


if __name__ == "__main__":
    sys.exit(main())
