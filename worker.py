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
from app.activities.office import OfficeActivities
from app.activities.pdf import PdfActivities
from app.activities.video import VideoActivities
from app.activities.webhooks import WebhookActivities
from app.config import Lane, Settings, get_settings
from app.db.migrate import upgrade_database
from app.db.session import Database
from app.engines.files import remove_orphaned_folders
from app.engines.isolated import start_forkserver
from app.engines.office import OfficePool, OfficeSettings, office_missing_reason
from app.engines.video import find_ffmpeg
from app.logs import configure_logging
from app.storage import create_store
from app.storage.base import BlobStore
from app.temporal import connect_checked, metrics_runtime
from app.workflows.job import JobWorkflow
from app.workflows.webhook import WebhookWorkflow

logger = logging.getLogger("worklane.worker")


def office_settings(settings: Settings) -> OfficeSettings:
    return OfficeSettings(
        soffice=settings.libreoffice_path,
        python=settings.libreoffice_python,
        pool_size=settings.libreoffice_pool_size,
        max_conversions=settings.libreoffice_max_conversions,
        start_timeout_seconds=settings.libreoffice_start_timeout_seconds,
        conversion_timeout_seconds=settings.libreoffice_conversion_timeout_seconds,
        profile_root=settings.libreoffice_profile_dir,
        isolate_network=settings.libreoffice_isolate_network,
    )


def build_workers(
    client: Client,
    settings: Settings,
    db: Database,
    store: BlobStore,
    lanes: list[Lane],
    office_pool: OfficePool | None = None,
) -> list[Worker]:
    """Create one worker per lane that has work; the light lane also runs the workflows.

    The documents lane serves office conversions only when ``office_pool`` is given.
    """
    bookkeeping = BookkeepingActivities(db, store)
    inputs = InputActivities(store, settings.work_dir)
    images = ImageActivities(store, settings.work_dir, settings.image_engine_processes)
    pages = HtmlActivities(store, settings.work_dir)
    pdfs = PdfActivities(store, settings.work_dir)
    webhooks = WebhookActivities(db, store, settings)
    activities_by_lane: dict[Lane, list[Callable[..., Any]]] = {
        Lane.LIGHT: [
            bookkeeping.record_job_state,
            bookkeeping.object_exists,
            bookkeeping.delete_objects,
            inputs.inspect_input,
            images.compress_image,
            pages.render_html,
            pdfs.pdf_to_images_zip,
            pdfs.pdf_to_text,
            pdfs.pdf_to_markdown,
            pdfs.pdf_to_docx,
            webhooks.deliver_webhook,
        ],
        Lane.DOCUMENTS: [],
        Lane.MEDIA: [],
    }
    if office_pool is not None:
        office = OfficeActivities(store, settings.work_dir, office_pool)
        activities_by_lane[Lane.DOCUMENTS].append(office.convert_office_to_pdf)
    ffmpeg = find_ffmpeg(settings.ffmpeg_path)
    if ffmpeg is None:
        logger.warning("Video conversions are off on this worker: ffmpeg not found")
    else:
        videos = VideoActivities(store, settings.work_dir, ffmpeg, settings.video_engine_processes)
        activities_by_lane[Lane.MEDIA] += [
            videos.trim_video,
            videos.compress_video,
            videos.video_to_gif,
            videos.mute_video,
        ]
    workers = []
    for lane in lanes:
        activities = activities_by_lane[lane]
        workflows = [JobWorkflow, WebhookWorkflow] if lane is Lane.LIGHT else []
        if not activities and not workflows:
            logger.info("Lane %s has no engines yet; not polling its task queue", lane.value)
            continue
        # Documents and media workers take only as many conversions as they run engine
        # processes, so the rest wait in Temporal's queue where another worker can take them.
        max_activities = {
            Lane.DOCUMENTS: settings.libreoffice_pool_size,
            Lane.MEDIA: settings.video_engine_processes,
        }.get(lane)
        workers.append(
            Worker(
                client,
                task_queue=settings.task_queue(lane),
                workflows=workflows,
                activities=activities,
                max_concurrent_activities=max_activities,
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
    runtime = None
    if settings.worker_metrics_address:
        runtime = metrics_runtime(settings.worker_metrics_address)
        logger.info("Serving metrics on http://%s/metrics", settings.worker_metrics_address)
    client = await connect_checked(settings, runtime)
    orphans = remove_orphaned_folders(settings.work_dir)
    if orphans:
        logger.info("Removed %d job folders left by stopped workers", orphans)
    office_pool = None
    if Lane.DOCUMENTS in lanes:
        missing = office_missing_reason(settings.libreoffice_path, settings.libreoffice_python)
        if missing is None:
            office_pool = OfficePool(office_settings(settings))
        else:
            logger.warning("Office conversions are off on this worker: %s", missing)
    store = create_store(settings)
    workers = build_workers(client, settings, db, store, lanes, office_pool)
    if Lane.LIGHT in lanes:
        # Start the engine fork server now, so the first conversion does not wait for it.
        await start_forkserver()
    warming = asyncio.create_task(office_pool.warm()) if office_pool is not None else None

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
    if warming is not None:
        warming.cancel()
        await asyncio.gather(warming, return_exceptions=True)
    if office_pool is not None:
        await office_pool.close()
    await store.close()
    await db.dispose()
    logger.info("Worker stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    names = ", ".join(lane.value for lane in Lane)
    parser.add_argument("lanes", nargs="*", help=f"lanes to serve, from {names} (default: all)")
    parser.add_argument(
        "--lanes",
        dest="lane_list",
        default=None,
        help="the same as a comma-separated list, such as documents,media",
    )
    args = parser.parse_args()
    listed = [name.strip() for name in (args.lane_list or "").split(",") if name.strip()]
    if args.lane_list is not None and not listed:
        parser.error(f"--lanes names no lane; give one or more of {names}, or leave it out")
    requested = [*args.lanes, *listed]
    unknown = [name for name in requested if name not in {lane.value for lane in Lane}]
    if unknown:
        parser.error(f"unknown lane {', '.join(unknown)}; choose from {names}")
    configure_logging(get_settings().log_format)
    lanes = list(dict.fromkeys(Lane(name) for name in requested)) or list(Lane)
    asyncio.run(run(lanes))


if __name__ == "__main__":
    main()
