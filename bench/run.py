"""Benchmarks of the whole service against its engines called directly, printed as ratios.

Each part starts its own stack (Temporal dev server, one worker, the API) on free loopback
ports, and this process drives it over HTTP, so client, service and Temporal share the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys

from bench import images, office, pdf, video
from bench.service import running_stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21, help="jobs per image latency median")
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the throughput run")
    parser.add_argument("--office-runs", type=int, default=11, help="jobs per office median")
    parser.add_argument("--pdf-runs", type=int, default=7, help="jobs per PDF tool median")
    parser.add_argument("--video-runs", type=int, default=5, help="jobs per video tool median")
    parser.add_argument(
        "--only", choices=["images", "office", "pdf", "video"], help="run one part instead of all"
    )
    args = parser.parse_args()

    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        "shared by the service, Temporal and this client"
    )
    try:
        if args.only in (None, "images"):
            print("Images, Temporal dev server with its state in memory:")
            with running_stack(temporal_in_memory=True) as (url, key):
                asyncio.run(images.measure(url, key, args.runs, args.jobs, with_latency=True))
            print("Images, Temporal dev server with its state in an SQLite file, as 'make run':")
            with running_stack(temporal_in_memory=False) as (url, key):
                asyncio.run(images.measure(url, key, args.runs, args.jobs, with_latency=False))
        if args.only in (None, "office"):
            print("Office documents, Temporal dev server with its state in memory:")
            with running_stack(temporal_in_memory=True) as (url, key):
                asyncio.run(office.measure(url, key, args.office_runs))
        if args.only in (None, "pdf"):
            print("PDF tools, Temporal dev server with its state in memory:")
            with running_stack(temporal_in_memory=True) as (url, key):
                asyncio.run(pdf.measure(url, key, args.pdf_runs))
        if args.only in (None, "video"):
            print("Video tools, Temporal dev server with its state in memory:")
            with running_stack(temporal_in_memory=True) as (url, key):
                asyncio.run(video.measure(url, key, args.video_runs))
    except (subprocess.CalledProcessError, RuntimeError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
