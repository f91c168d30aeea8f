"""The worklane command line, on top of the client.

    worklane convert word-to-pdf report.docx -o report.pdf
    worklane jobs list --status running
    worklane jobs cancel JOB_ID

The key comes from WORKLANE_API_KEY and the URL from WORKLANE_API_URL.
Exit codes:
  0  done
  1  the job failed or was canceled
  2  the request was invalid: a usage error, a missing file, or a 4xx response
  3  the API could not be reached or returned 5xx
  4  the wait timed out
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from worklane_client.client import Client, Job
from worklane_client.errors import (
    ApiError,
    JobFailedError,
    TransportError,
    WaitTimeoutError,
    WorklaneError,
)

EXIT_JOB_FAILED = 1
EXIT_INVALID = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4
BAR_WIDTH = 30


class ProgressBar:
    """One line of progress on stderr, redrawn in place on a terminal; lines otherwise."""

    def __init__(self, label: str, stream: TextIO, enabled: bool) -> None:
        self.label = label
        self.stream = stream
        self.enabled = enabled
        self.interactive = stream.isatty()
        self.last_percent = -1

    def show(self, percent: int, detail: str = "") -> None:
        percent = max(0, min(100, percent))
        if not self.enabled or percent == self.last_percent:
            return
        if not self.interactive and percent not in (0, 100) and percent - self.last_percent < 25:
            return
        self.last_percent = percent
        filled = BAR_WIDTH * percent // 100
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = f"{self.label:<9} [{bar}] {percent:3d}% {detail}".rstrip()
        if self.interactive:
            self.stream.write(f"\r{line}\033[K")
            if percent == 100:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def bytes(self, done: int, total: int | None) -> None:
        if total:
            self.show(100 * done // total, f"{done / 1_048_576:.1f} of {total / 1_048_576:.1f} MB")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from err
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _option(text: str) -> tuple[str, Any]:
    name, separator, raw = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=VALUE")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def _print_job(job: Job) -> None:
    print(json.dumps(job.data, indent=2))


def _convert(client: Client, args: argparse.Namespace) -> int:
    source = Path(args.file)
    if not source.is_file():
        print(f"error: no file at {source}", file=sys.stderr)
        return EXIT_INVALID
    dest = Path(args.output) if args.output else Path.cwd()
    folder = dest if dest.is_dir() else dest.parent
    if not folder.is_dir():
        print(f"error: no folder at {folder} for the output", file=sys.stderr)
        return EXIT_INVALID
    show = not args.quiet
    upload = ProgressBar("upload", sys.stderr, show)
    job_bar = ProgressBar("job", sys.stderr, show)
    download = ProgressBar("download", sys.stderr, show)

    def on_update(job: Job) -> None:
        job_bar.show(100 if job.finished else job.progress, job.status)

    job = client.convert(
        args.tool,
        source,
        dest,
        options=dict(args.option or []),
        wait_seconds=args.wait,
        on_upload=upload.bytes,
        on_update=on_update,
        on_download=download.bytes,
        webhookUrl=args.webhook_url,
    )
    output = job.output or {}
    saved = dest / output.get("fileName", "") if dest.is_dir() else dest
    print(f"{job.id} succeeded: {saved} ({output.get('sizeBytes', '?')} bytes)")
    return 0


def _jobs_list(client: Client, args: argparse.Namespace) -> int:
    jobs, cursor = client.list_jobs(
        status=args.status, tool_slug=args.tool, limit=args.limit, cursor=args.cursor
    )
    for job in jobs:
        code = (job.error or {}).get("code", "")
        print(f"{job.id}  {job.tool_slug:<20} {job.status:<10} {job.progress:3d}%  {code}".rstrip())
    if cursor:
        print(f"next page: worklane jobs list --cursor {cursor}", file=sys.stderr)
    return 0


def _jobs_get(client: Client, args: argparse.Namespace) -> int:
    _print_job(client.get_job(args.job_id))
    return 0


def _jobs_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(args.job_id)
    print(f"{job.id} {job.status}")
    return 0


def _jobs_close(client: Client, args: argparse.Namespace) -> int:
    job = client.close_job(args.job_id)
    print(f"{job.id} closed")
    return 0


def _tools(client: Client, _args: argparse.Namespace) -> int:
    for tool in client.tools():
        if tool.get("apiJobs"):
            print(f"{tool['slug']:<22} {tool.get('title', '')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="worklane",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert a file and save the output")
    convert.add_argument("tool", help="tool slug, such as image-compress-api")
    convert.add_argument("file", help="the input file")
    convert.add_argument("-o", "--output", help="output file or folder (default: here)")
    convert.add_argument(
        "-O",
        "--option",
        action="append",
        type=_option,
        metavar="NAME=VALUE",
        help="a tool option; VALUE is read as JSON when it can be, such as quality=80",
    )
    convert.add_argument(
        "--wait", type=_positive_seconds, default=600.0, help="seconds to wait (600)"
    )
    convert.add_argument("--webhook-url", help="URL that receives the job's final event")
    convert.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    convert.set_defaults(handler=_convert)

    commands.add_parser("tools", help="list the tools that take API jobs").set_defaults(
        handler=_tools
    )

    jobs = commands.add_parser("jobs", help="list, show, cancel or close jobs")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = job_commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", help="queued, running, succeeded, failed or canceled")
    listing.add_argument("--tool", help="only jobs of this tool")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (1-100)")
    listing.add_argument("--cursor", help="the next page's cursor, from the previous page")
    listing.set_defaults(handler=_jobs_list)
    for name, handler, text in (
        ("get", _jobs_get, "print a job as JSON"),
        ("cancel", _jobs_cancel, "cancel a queued or running job"),
        ("close", _jobs_close, "hide a finished job from the listing"),
    ):
        command = job_commands.add_parser(name, help=text)
        command.add_argument("job_id")
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with Client() as client:
            code: int = args.handler(client, args)
            return code
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID
    except JobFailedError as err:
        print(
            f"error: job {err.job.id} {err.job.status}: {err.code}: {err.message}", file=sys.stderr
        )
        return EXIT_JOB_FAILED
    except WaitTimeoutError as err:
        print(
            f"error: {err.message}; see it with 'worklane jobs get {err.job.id}'", file=sys.stderr
        )
        return EXIT_TIMEOUT
    except TransportError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ApiError as err:
        print(f"error: {err.status} {err.code}: {err.message}", file=sys.stderr)
        return EXIT_UNAVAILABLE if err.retryable else EXIT_INVALID
    except WorklaneError as err:
        print(f"error: {err.code}: {err.message}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
