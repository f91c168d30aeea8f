"""``JobWorkflow``: one job from upload to output expiry.

The workflow sleeps until the output expires, so its histories live for days and replay
against newer code: any change to the sequence of commands needs ``workflow.patched``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.exceptions import (
    TimeoutError as ActivityTimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from app.errors import NON_RETRYABLE_CODES, JobErrorCode
    from app.workflows import names
    from app.workflows.types import (
        ConvertRequest,
        ConvertResult,
        DeleteObjectsRequest,
        InputFacts,
        InspectRequest,
        JobOutcome,
        JobParams,
        JobStateUpdate,
        JobStatus,
        ObjectExistsRequest,
        WebhookEvent,
    )
    from app.workflows.webhook import WebhookWorkflow, child_workflow_id, event_id_for

WORKSPACE_ID = SearchAttributeKey.for_keyword("WorkspaceId")
TOOL_SLUG = SearchAttributeKey.for_keyword("ToolSlug")
JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")

BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
# Bookkeeping must not fail a job while the database is briefly unreachable: retry without limit.
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
INSPECT_TIMEOUT = timedelta(seconds=60)
CONVERT_RETRY_INITIAL = timedelta(seconds=1)
CONVERT_RETRY_MAXIMUM = timedelta(seconds=30)
RUN_SLOT_PATCH = "run-slot-cap"
"""Patch id of the cap on running jobs per workspace, which changed the start of a run."""
WEBHOOK_PATCH = "webhook-delivery"
"""Patch id of the webhook child workflow started once a job with a webhook URL finishes."""
RUN_SLOT_PAUSE_INITIAL = timedelta(seconds=1)
RUN_SLOT_PAUSE_MAXIMUM = timedelta(seconds=15)
UPLOAD_POLL_INITIAL = timedelta(seconds=1)
# How long after an upload URL expires a late upload is looked for: S3 checks the expiry when
# a request starts, so an upload begun just before it may still be arriving.
# NOTE: An upload still arriving after this margin stays in the bucket. A lifecycle rule on
# the bucket is the backstop, documented with the S3 settings.
LATE_UPLOAD_MARGIN = timedelta(seconds=60)


class JobFailed(Exception):
    def __init__(self, code: JobErrorCode, message: str, attempt: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.attempt = attempt


def _error(code: JobErrorCode, message: str) -> dict[str, Any]:
    return {"code": code.value, "message": message, "retryable": code not in NON_RETRYABLE_CODES}


# NOTE: The sandbox is off because re-importing this module for every run cost about 6 ms of
# worker CPU per job, a quarter of the small-job throughput on two cores (bench/run.py).
# Determinism rests on tests instead: the replay test over recorded histories, and a test
# that keeps this package's imports to deterministic modules.
def _running_now(params: JobParams, *, claim_run_slot: bool) -> JobStateUpdate:
    """Build the state change that starts the job now, with its deadline counted from now."""
    started_at = workflow.now()
    return JobStateUpdate(
        job_id=params.job_id,
        state_version=0,
        status=JobStatus.RUNNING,
        progress=0,
        attempt=1,
        started_at=started_at,
        deadline_at=started_at + timedelta(seconds=params.deadline_seconds),
        claim_run_slot=claim_run_slot,
    )


@workflow.defn(sandboxed=False)
class JobWorkflow:
    def __init__(self) -> None:
        self._status = JobStatus.QUEUED
        self._state_version = 0
        self._input_uploaded = False

    @workflow.signal
    def input_uploaded(self) -> None:
        """Sent by the API once the input object is stored."""
        self._input_uploaded = True

    @workflow.query
    def status(self) -> str:
        return self._status.value

    @workflow.run
    async def run(self, params: JobParams) -> JobOutcome:
        workflow.logger.info("Job started", extra={"job_id": params.job_id})
        try:
            result = await self._process(params)
        except JobFailed as failure:
            await self._finish_unsuccessfully(
                params, JobStatus.FAILED, _error(failure.code, failure.message), failure.attempt
            )
            workflow.logger.info(
                "Job failed", extra={"job_id": params.job_id, "error_code": failure.code.value}
            )
            await self._start_webhook(params, JobStatus.FAILED)
            await self._delete_late_upload(params)
            return JobOutcome(status=JobStatus.FAILED, error_code=failure.code.value)
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            canceled_while = self._status.value
            message = f"The job was canceled while {canceled_while}."
            error = _error(JobErrorCode.CANCELED, message) | {"canceledWhile": canceled_while}
            await self._finish_unsuccessfully(params, JobStatus.CANCELED, error, None)
            workflow.logger.info("Job canceled", extra={"job_id": params.job_id})
            await self._start_webhook(params, JobStatus.CANCELED)
            await self._delete_late_upload(params)
            raise

        await self._keep_until_expiry(params, result)
        return JobOutcome(status=JobStatus.SUCCEEDED)

    async def _process(self, params: JobParams) -> ConvertResult:
        # The API stores the job as queued, so the first state change written here is running.
        if params.input_kind == "file":
            await self._wait_for_upload(params)
        if not workflow.patched(RUN_SLOT_PATCH):
            return await self._process_without_run_slots(params)
        deadline_at = await self._start_running(params)

        facts: InputFacts | None = None
        if params.input_kind == "file" and params.inspect_activity:
            facts = await self._inspect(params, deadline_at)
        return await self._convert(params, deadline_at, facts)

    async def _process_without_run_slots(self, params: JobParams) -> ConvertResult:
        """Replay path of runs started before the per-workspace cap on running jobs."""
        running = _running_now(params, claim_run_slot=False)
        assert running.deadline_at is not None
        deadline_at = running.deadline_at
        facts: InputFacts | None = None
        if params.input_kind == "file" and params.inspect_activity:
            _, facts = await asyncio.gather(
                self._record(running), self._inspect(params, deadline_at)
            )
        else:
            await self._record(running)
        return await self._convert(params, deadline_at, facts)

    async def _start_running(self, params: JobParams) -> datetime:
        """Mark the job running once its workspace is below its cap, and return its deadline.

        While the cap is reached the job stays queued and retries the claim after growing pauses.
        """
        pause = RUN_SLOT_PAUSE_INITIAL
        while True:
            running = _running_now(params, claim_run_slot=True)
            if await self._record(running):
                assert running.deadline_at is not None
                return running.deadline_at
            await workflow.sleep(pause)
            pause = min(pause * 2, RUN_SLOT_PAUSE_MAXIMUM)

    async def _wait_for_upload(self, params: JobParams) -> None:
        assert params.upload_expires_at is not None and params.input_object_key is not None
        check = ObjectExistsRequest(job_id=params.job_id, object_key=params.input_object_key)
        # Runs on an API that signals uploads never reach the pauses below, so their
        # growth changed no recorded history.
        pause = UPLOAD_POLL_INITIAL
        longest_pause = timedelta(seconds=params.upload_poll_seconds)
        while True:
            remaining = params.upload_expires_at - workflow.now()
            if remaining <= timedelta(0):
                break
            wait = remaining
            if not params.upload_signal_expected:
                # The store sends no signal: look for the object after growing pauses.
                wait = min(wait, pause)
                pause = min(pause * 2, longest_pause)
            try:
                await workflow.wait_condition(lambda: self._input_uploaded, timeout=wait)
                return
            except TimeoutError:
                pass
            if not params.upload_signal_expected and await self._object_exists(check):
                return

        # A last look: the upload may have finished just as the intent expired.
        if self._input_uploaded or await self._object_exists(check):
            return
        raise JobFailed(
            JobErrorCode.UPLOAD_EXPIRED,
            "No input was uploaded before the upload URL expired. Create a new job and upload "
            "the file before uploadIntent.expiresAt.",
        )

    async def _delete_late_upload(self, params: JobParams) -> None:
        """Delete an input uploaded after the job stopped needing it.

        A store that sends no upload signal (S3) accepts uploads until the presigned URL
        expires, even once the job has ended and its input was deleted, so the workflow waits
        for the expiry and deletes the key once more. The API's own upload route refuses
        uploads to ended jobs, so nothing waits for that store.
        """
        if params.upload_signal_expected or params.upload_expires_at is None:
            return
        assert params.input_object_key is not None
        wait = params.upload_expires_at + LATE_UPLOAD_MARGIN - workflow.now()
        if wait <= timedelta(0):
            return
        await workflow.sleep(wait)
        await self._delete_objects(params.job_id, [params.input_object_key])

    async def _object_exists(self, check: ObjectExistsRequest) -> bool:
        exists: bool = await workflow.execute_activity(
            names.OBJECT_EXISTS,
            check,
            result_type=bool,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        return exists

    async def _inspect(self, params: JobParams, deadline_at: datetime) -> InputFacts:
        assert params.inspect_activity and params.input_object_key
        assert params.input_content_type is not None and params.input_size_bytes is not None
        request = InspectRequest(
            job_id=params.job_id,
            tool_slug=params.tool_slug,
            object_key=params.input_object_key,
            declared_content_type=params.input_content_type,
            declared_size_bytes=params.input_size_bytes,
            max_pixels=params.max_pixels,
        )
        try:
            # A local activity: the check reads only the file's header, and running it in the
            # workflow's own worker saves a round trip through the server for every job.
            facts: InputFacts = await workflow.execute_local_activity(
                params.inspect_activity,
                request,
                result_type=InputFacts,
                schedule_to_close_timeout=self._until(deadline_at, cap=INSPECT_TIMEOUT),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        # A local activity's non-retryable failure arrives as the bare ApplicationError.
        except (ActivityError, ApplicationError) as err:
            if is_cancelled_exception(err):
                raise
            raise self._classify(err, params) from err
        return facts

    async def _convert(
        self, params: JobParams, deadline_at: datetime, facts: InputFacts | None
    ) -> ConvertResult:
        stem = (params.input_name or "output").rsplit(".", 1)[0] or "output"
        request = ConvertRequest(
            job_id=params.job_id,
            tool_slug=params.tool_slug,
            input_object_key=params.input_object_key,
            input_size_bytes=facts.size_bytes if facts else params.input_size_bytes,
            input_pixels=facts.width * facts.height
            if facts and facts.width and facts.height
            else None,
            input_name=params.input_name,
            input_kind=params.input_kind,
            output_object_key=f"{params.workspace_id}/{params.job_id}/output-{workflow.uuid4().hex}",
            output_file_name=f"{stem}{params.output_extension}",
            options=params.options,
            max_pixels=params.max_pixels,
        )
        try:
            result: ConvertResult = await workflow.execute_activity(
                params.convert_activity,
                request,
                result_type=ConvertResult,
                task_queue=params.convert_task_queue,
                schedule_to_close_timeout=self._until(deadline_at),
                heartbeat_timeout=timedelta(seconds=params.heartbeat_timeout_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=CONVERT_RETRY_INITIAL,
                    maximum_interval=CONVERT_RETRY_MAXIMUM,
                    maximum_attempts=params.max_attempts,
                ),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise self._classify(err, params) from err
        return result

    def _until(self, deadline_at: datetime, cap: timedelta | None = None) -> timedelta:
        remaining = deadline_at - workflow.now()
        if remaining <= timedelta(0):
            raise JobFailed(JobErrorCode.DEADLINE_EXCEEDED, "The job reached its deadline.")
        return min(remaining, cap) if cap else remaining

    def _classify(self, err: ActivityError | ApplicationError, params: JobParams) -> JobFailed:
        """Turn an activity failure into the job's error."""
        if isinstance(err, ApplicationError):
            cause: BaseException | None = err
            retry_state = None
        else:
            cause = err.cause
            retry_state = err.retry_state
        # A deadline between retries surfaces with the last attempt's error as the cause,
        # so the retry state decides, not the cause's type.
        if retry_state == RetryState.TIMEOUT or (
            isinstance(cause, ActivityTimeoutError)
            and retry_state != RetryState.MAXIMUM_ATTEMPTS_REACHED
        ):
            return JobFailed(
                JobErrorCode.DEADLINE_EXCEEDED,
                f"The job did not finish within its deadline of {params.deadline_seconds} seconds. "
                "Retry with a larger deadlineSeconds or a smaller input.",
            )
        if isinstance(cause, ApplicationError) and cause.non_retryable and cause.type:
            try:
                code = JobErrorCode(cause.type)
            except ValueError:
                code = JobErrorCode.ENGINE_FAILED
            attempt = None
            if cause.details and isinstance(cause.details[0], dict):
                attempt = cause.details[0].get("attempt")
            return JobFailed(code, cause.message, attempt)
        workflow.logger.warning(
            "Conversion failed on every attempt",
            extra={"job_id": params.job_id, "cause": str(cause)},
        )
        return JobFailed(
            JobErrorCode.ENGINE_FAILED,
            f"The conversion engine failed on all {params.max_attempts} attempts. "
            "The input may trigger an engine fault; retry later or contact the operator.",
            params.max_attempts,
        )

    async def _finish_unsuccessfully(
        self, params: JobParams, status: JobStatus, error: dict[str, Any], attempt: int | None
    ) -> None:
        keys = [k for k in (params.input_object_key,) if k]
        if keys:
            await self._delete_objects(params.job_id, keys)
        await self._record(
            JobStateUpdate(
                job_id=params.job_id,
                state_version=0,
                status=status,
                attempt=attempt,
                finished_at=workflow.now(),
                error=error,
            )
        )

    async def _keep_until_expiry(self, params: JobParams, result: ConvertResult) -> None:
        expires_at = workflow.now() + timedelta(seconds=params.retention_seconds)
        output: dict[str, Any] = {
            "fileName": result.file_name,
            "contentType": result.content_type,
            "sizeBytes": result.size_bytes,
            "objectKey": result.output_object_key,
            "expiresAt": expires_at.isoformat(),
            "expired": False,
            "metadata": result.metadata,
        }
        await self._record(
            JobStateUpdate(
                job_id=params.job_id,
                state_version=0,
                status=JobStatus.SUCCEEDED,
                progress=100,
                attempt=result.attempt,
                finished_at=workflow.now(),
                output=output,
            )
        )
        workflow.logger.info("Job succeeded", extra={"job_id": params.job_id})
        await self._start_webhook(params, JobStatus.SUCCEEDED)

        await workflow.sleep(expires_at - workflow.now())

        keys = [k for k in (params.input_object_key, result.output_object_key) if k]
        await self._delete_objects(params.job_id, keys)
        await self._record(
            JobStateUpdate(
                job_id=params.job_id,
                state_version=0,
                status=JobStatus.SUCCEEDED,
                output=output | {"expired": True},
            )
        )
        workflow.logger.info("Job output expired and deleted", extra={"job_id": params.job_id})
        if params.input_kind == "file":
            await self._delete_late_upload(params)

    async def _start_webhook(self, params: JobParams, status: JobStatus) -> None:
        """Start the delivery of the job's final event, after the status was recorded.

        The child is abandoned: it keeps retrying after this run closes, and this run waits
        only for its start, never for the delivery.
        """
        if params.webhook is None or not workflow.patched(WEBHOOK_PATCH):
            return
        event = WebhookEvent(
            job_id=params.job_id,
            workspace_id=params.workspace_id,
            event_id=event_id_for(params.job_id),
            event_type=f"job.{status.value}",
            webhook=params.webhook,
        )
        try:
            await workflow.start_child_workflow(
                WebhookWorkflow.run,
                event,
                id=child_workflow_id(params.job_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            # Only a reset of this run gets here, and the first run's delivery is kept.
            workflow.logger.warning(
                "Webhook workflow already started", extra={"job_id": params.job_id}
            )

    async def _delete_objects(self, job_id: str, keys: list[str]) -> None:
        await workflow.execute_activity(
            names.DELETE_OBJECTS,
            DeleteObjectsRequest(job_id=job_id, object_keys=keys),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    async def _record(self, update: JobStateUpdate) -> bool:
        """Write a state change to the job index, then to the search attributes.

        Returns False when the index refused a run-slot claim; nothing changed then.
        """
        self._state_version += 1
        update.state_version = self._state_version
        applied = await workflow.execute_local_activity(
            names.RECORD_JOB_STATE,
            update,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        if applied is False:
            return False
        previous_status = self._status
        self._status = update.status
        # The start request sets the first status; later ones change only when the status does.
        if update.status != previous_status:
            workflow.upsert_search_attributes([JOB_STATUS.value_set(update.status.value)])
        return True
