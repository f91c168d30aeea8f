"""Error codes that a failed job carries, and the exception engines raise for bad input."""

from __future__ import annotations

import enum


class JobErrorCode(enum.StrEnum):
    """Values of ``error.code`` on a failed or canceled job."""

    UPLOAD_EXPIRED = "upload_expired"
    INPUT_MISSING = "input_missing"
    INPUT_SIZE_MISMATCH = "input_size_mismatch"
    INPUT_TYPE_MISMATCH = "input_type_mismatch"
    INPUT_CORRUPT = "input_corrupt"
    INPUT_ENCRYPTED = "input_encrypted"
    INPUT_TOO_LARGE = "input_too_large"
    INVALID_OPTIONS = "invalid_options"
    """The options do not fit this input, such as a page range beyond the last page."""
    INPUT_UNSUPPORTED = "input_unsupported"
    """The input is valid, but this tool cannot process it, such as a codec MP4 cannot hold."""
    DEADLINE_EXCEEDED = "deadline_exceeded"
    ENGINE_FAILED = "engine_failed"
    CANCELED = "canceled"
    INTERNAL_ERROR = "internal_error"


# Codes whose cause is the input: a retry with the same input fails the same way.
NON_RETRYABLE_CODES = frozenset(
    {
        JobErrorCode.UPLOAD_EXPIRED,
        JobErrorCode.INPUT_MISSING,
        JobErrorCode.INPUT_SIZE_MISMATCH,
        JobErrorCode.INPUT_TYPE_MISMATCH,
        JobErrorCode.INPUT_CORRUPT,
        JobErrorCode.INPUT_ENCRYPTED,
        JobErrorCode.INPUT_TOO_LARGE,
        JobErrorCode.INVALID_OPTIONS,
        JobErrorCode.INPUT_UNSUPPORTED,
        JobErrorCode.CANCELED,
    }
)


class InputError(Exception):
    """Bad input found by an engine or an input check; the job fails without retries."""

    def __init__(self, code: JobErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[InputError], tuple[JobErrorCode, str]]:
        # Keeps the code when the error crosses a process boundary through pickle.
        return (InputError, (self.code, self.message))
