"""Temporal client construction, shared by the API, the worker and the tests."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from app.config import Settings

SEARCH_ATTRIBUTE_NAMES = ("WorkspaceId", "ToolSlug", "JobStatus")


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )


async def connect_checked(settings: Settings, runtime: Runtime | None = None) -> Client:
    """Connect and check that the namespace exists; end the process with one line if not."""
    address, namespace = settings.temporal_address, settings.temporal_namespace
    try:
        client = await connect(settings, runtime)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    except RuntimeError as err:
        raise SystemExit(
            f"cannot connect to Temporal at {address} ({err}); start the server or correct "
            "WORKLANE_TEMPORAL_ADDRESS"
        ) from None
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise SystemExit(
            f"Temporal at {address} has no namespace '{namespace}'; create it or correct "
            "WORKLANE_TEMPORAL_NAMESPACE"
        ) from None
    return client


def metrics_runtime(bind_address: str) -> Runtime:
    """Build a Temporal runtime that serves the SDK's and the activities' metrics for Prometheus.

    The endpoint serves ``GET /metrics`` at ``bind_address``, such as ``127.0.0.1:9464``.
    """
    prometheus = PrometheusConfig(
        bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


async def register_search_attributes(client: Client) -> list[str]:
    """Add the job search attributes the namespace lacks; return the names added."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as err:
        # Temporal's time-skipping test server cannot list them; it starts with none.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = [name for name in SEARCH_ATTRIBUTE_NAMES if name not in existing]
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing
                },
            )
        )
    return missing
