"""Python client of the Worklane jobs API, sync and async, and the ``worklane`` command line.

It depends only on httpx, so it can be used without the server's packages::

    from worklane_client import Client

    with Client() as client:  # WORKLANE_API_URL and WORKLANE_API_KEY
        job = client.convert("image-compress-api", "photo.png", "photo.jpg")
"""

from worklane_client.client import AsyncClient, Client, Job
from worklane_client.errors import (
    ApiError,
    JobFailedError,
    TransportError,
    WaitTimeoutError,
    WorklaneError,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "Job",
    "JobFailedError",
    "TransportError",
    "WaitTimeoutError",
    "WorklaneError",
]
