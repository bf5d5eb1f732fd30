import pytest

from runtime.errors import InvalidArgument, NotFound
from runtime.process.init import SetupError, failure_report


@pytest.mark.parametrize("error, want", [
    (InvalidArgument("/etc/passwd in the container is a FIFO"),
     {"error": "/etc/passwd in the container is a FIFO", "phase": "user", "error_class": "InvalidArgument"}),
    (NotFound("user 'x' not found"), {"error": "user 'x' not found", "phase": "user", "error_class": "NotFound"}),
    (SetupError("exec", "executable 'x' not found"), {"error": "executable 'x' not found", "phase": "exec"}),
    (OSError(5, "Input/output error"), {"error": "OSError: [Errno 5] Input/output error", "phase": "user"}),
])
def test_a_domain_error_reports_its_class(error: Exception, want: dict[str, str]) -> None:
    assert failure_report("user", error) == want
