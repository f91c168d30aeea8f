"""``WebhookWorkflow``: delivery of one job event, with retries for up to the retry window.

``JobWorkflow`` starts it as an abandoned child, so a slow or dead receiver never holds up
the job, and the job's status never depends on the delivery.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from app.workflows import names
    from app.workflows.types import WebhookEvent, WebhookOutcome

# Time for resolving the host (at most 5 s) and writing the attempt to the delivery log,
# on top of the request's own time limit.
DELIVERY_OVERHEAD = timedelta(seconds=30)
RETRY_BACKOFF = 2.0


def event_id_for(job_id: str) -> str:
    """Return the event id of a job's final event: ``evt_`` and the job id's hex part."""
    return "evt_" + job_id.removeprefix("job_")


def child_workflow_id(job_id: str) -> str:
    return f"{job_id}-webhook"


# The sandbox is off for the same reason as JobWorkflow's: this module imports only
# deterministic code, which tests/test_replay.py checks.
@workflow.defn(sandboxed=False)
class WebhookWorkflow:
    @workflow.run
    async def run(self, event: WebhookEvent) -> WebhookOutcome:
        webhook = event.webhook
        log_fields = {"job_id": event.job_id, "event_id": event.event_id}
        try:
            await workflow.execute_activity(
                names.DELIVER_WEBHOOK,
                event,
                # The window counts from the first attempt and includes the pauses.
                schedule_to_close_timeout=timedelta(seconds=webhook.retry_window_seconds),
                start_to_close_timeout=(
                    timedelta(seconds=webhook.request_timeout_seconds) + DELIVERY_OVERHEAD
                ),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=webhook.retry_initial_seconds),
                    backoff_coefficient=RETRY_BACKOFF,
                    maximum_interval=timedelta(seconds=webhook.retry_max_interval_seconds),
                    maximum_attempts=0,
                ),
            )
        except ActivityError as err:
            cause = err.cause or err
            workflow.logger.warning(
                "Webhook delivery stopped without success",
                extra=log_fields | {"retry_state": str(err.retry_state), "error": str(cause)},
            )
            return WebhookOutcome(delivered=False, error=str(cause))
        workflow.logger.info("Webhook delivered", extra=log_fields)
        return WebhookOutcome(delivered=True)
