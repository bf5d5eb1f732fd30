"""The one table from domain error class to gRPC status code (applied only in cri/instrument.py)."""
from __future__ import annotations

from cri.rpc.status import StatusCode
from runtime import errors

STATUS_OF: dict[type[errors.PycridError], StatusCode] = {
    errors.NotFound: StatusCode.NOT_FOUND,
    errors.AlreadyExists: StatusCode.ALREADY_EXISTS,
    errors.InvalidArgument: StatusCode.INVALID_ARGUMENT,
    errors.FailedPrecondition: StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: StatusCode.UNAVAILABLE,
    errors.Unauthenticated: StatusCode.UNAUTHENTICATED,
    errors.DeadlineExceeded: StatusCode.DEADLINE_EXCEEDED,
    errors.Internal: StatusCode.INTERNAL,
}


def status_of(exc: BaseException) -> StatusCode:
    """The code for a domain error (walking its classes), INTERNAL for anything unexpected."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return StatusCode.INTERNAL
