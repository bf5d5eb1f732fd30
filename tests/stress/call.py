"""One CRI call the harness makes: method, request, what it is about, and what to do on success."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT = 30.0
SLOW_TIMEOUT = 60.0  # calls that may pull (a pod's pause image) or unpack


@dataclass(frozen=True)
class Call:
    method: str
    request: Any
    subjects: tuple[str, ...]  # ids, names and image refs an error message should name
    valid: bool  # arguments drawn from what exists, not made up to be refused
    timeout: float = DEFAULT_TIMEOUT
    # Run with the response when the answer is OK: records what now exists, and may ask for a
    # follow-up call (StartContainer after CreateContainer).
    after: Callable[[Any], Call | None] | None = None


def brief(request: Any, limit: int = 300) -> str:
    """The request in one line, cut short: hostile requests carry megabyte strings."""
    text = " ".join(str(request).split())
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
