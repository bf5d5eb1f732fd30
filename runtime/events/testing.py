"""A Publisher for unit tests of the managers: it keeps what they published."""
from __future__ import annotations

from runtime.events.model import EventKind


class RecordedEvents:
    def __init__(self) -> None:
        self.published: list[tuple[EventKind, str, str]] = []  # (kind, subject id, sandbox id)

    def publish(self, kind: EventKind, subject_id: str, sandbox_id: str) -> None:
        self.published.append((kind, subject_id, sandbox_id))

    def kinds(self, subject_id: str) -> list[EventKind]:
        return [kind for kind, subject, _ in self.published if subject == subject_id]
