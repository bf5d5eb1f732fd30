"""What the error stream of a remotecommand session carries at its end: a metav1.Status as JSON
(protocol v4 and later: the exit code is in its causes, which is how `kubectl exec` learns it), or
for older protocols only the text of a failure."""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None = 0  # None: the command could not be run (see error)
    error: str = ""


def status_json(outcome: Outcome) -> bytes:
    if outcome.exit_code == 0 and not outcome.error:
        status: dict[str, object] = {"metadata": {}, "status": "Success"}
    elif outcome.exit_code is not None and not outcome.error:
        status = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                  "message": f"command terminated with non-zero exit code: exit status {outcome.exit_code}",
                  "details": {"causes": [{"reason": "ExitCode", "message": str(outcome.exit_code)}]}}
    else:
        status = {"metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
                  "message": f"Internal error occurred: {outcome.error}",
                  "details": {"causes": [{"message": outcome.error}]}}
    return json.dumps(status, separators=(",", ":")).encode()


def status_text(outcome: Outcome) -> bytes:
    """Protocols before v4: nothing on success, the failure's text otherwise."""
    if outcome.exit_code == 0 and not outcome.error:
        return b""
    if outcome.error:
        return f"Internal error occurred: {outcome.error}".encode()
    return f"command terminated with non-zero exit code: exit status {outcome.exit_code}".encode()
