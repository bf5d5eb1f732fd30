"""Structured logs: one logfmt line per event on stderr (time, level, logger, message, error)."""
from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = (f'time={when} level={record.levelname.lower()} logger={record.name} '
                f'msg={_quote(record.getMessage())}')
        if record.exc_info:
            line += f" exc={_quote(self.formatException(record.exc_info))}"
        return line


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
