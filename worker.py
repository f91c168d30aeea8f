"""Start a Temporal worker for the lanes named on the command line (all lanes by default)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from app.activities.bookkeeping import BookkeepingActivities
from app.activities.html import HtmlActivities
from app.activities.images import ImageActivities
from app.activities.inputs import InputActivities
from app.config import Lane, Settings, get_settings
from app.db.migrate import upgrade_database
from app.db.session import Database
from app.engines.isolated import start_forkserver
from app.storage import create_store
from app.temporal import connect
from app.workflows.job import JobWorkflow

logger = logging.getLogger("worklane.worker")


def build_workers(
    client: Client, settings: Settings, db: Database, lanes: list[Lane]
) -> list[Worker]:
    """Create one worker per lane that has work; the light lane also runs the workflows."""
    store = create_store(settings)
    bookkeeping = BookkeepingActivities(db, store)
    inputs = InputActivities(store, settings.work_dir)
    images = ImageActivities(store, settings.work_dir, settings.image_engine_processes)
    pages = HtmlActivities(store, settings.work_dir)
    activities_by_lane: dict[Lane, list[Callable[..., Any]]] = {
        Lane.LIGHT: [
            bookkeeping.record_job_state,
            bookkeeping.object_exists,
            bookkeeping.delete_objects,
            inputs.inspect_input,
            images.compress_image,
            pages.render_html,
        ],
        Lane.DOCUMENTS: [],
        Lane.MEDIA: [],
    }
    workers = []
    for lane in lanes:
        activities = activities_by_lane[lane]
        workflows = [JobWorkflow] if lane is Lane.LIGHT else []
        if not activities and not workflows:
            logger.info("Lane %s has no engines yet; not polling its task queue", lane.value)
            continue
        workers.append(
            Worker(
                client,
                task_queue=settings.task_queue(lane),
                workflows=workflows,
                activities=activities,
                max_heartbeat_throttle_interval=timedelta(
                    seconds=settings.heartbeat_throttle_seconds
                ),
                default_heartbeat_throttle_interval=timedelta(
                    seconds=settings.heartbeat_throttle_seconds
                ),
            )
        )
    return workers


async def run(lanes: list[Lane]) -> None:
    settings = get_settings()
    await upgrade_database(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    client = await connect(settings)
    workers = build_workers(client, settings, db, lanes)
    if Lane.LIGHT in lanes:
        # Start the engine fork server now, so the first conversion does not wait for it.
        await start_forkserver()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    logger.info("Worker started for lanes %s", ", ".join(lane.value for lane in lanes))
    runs = [asyncio.create_task(worker.run()) for worker in workers]
    await stop.wait()
    logger.info("Worker stopping")
    await asyncio.gather(*(worker.shutdown() for worker in workers))
    await asyncio.gather(*runs, return_exceptions=True)
    await db.dispose()
    logger.info("Worker stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    names = ", ".join(lane.value for lane in Lane)
    parser.add_argument("lanes", nargs="*", help=f"lanes to serve, from {names} (default: all)")
    args = parser.parse_args()
    unknown = [name for name in args.lanes if name not in {lane.value for lane in Lane}]
    if unknown:
        parser.error(f"unknown lane {', '.join(unknown)}; choose from {names}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    lanes = [Lane(name) for name in args.lanes] or list(Lane)
    asyncio.run(run(lanes))


if __name__ == "__main__":
    main()
