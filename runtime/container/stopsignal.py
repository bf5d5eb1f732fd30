"""Which signal stops a container: the CRI's stop_signal, else the image's STOPSIGNAL, else SIGTERM
(containerd's order), decided once at create and kept in the container's record.

Names are spelled as the CRI's Signal enum means them: "SIGTERM", "SIGRTMIN+3", "SIGRTMAX-2". An
image's STOPSIGNAL is hostile input written as Docker takes it: a name with or without "SIG", in
any case, or a number. One that names no signal stops the container with SIGTERM rather than not
at all (containerd would fail every StopContainer of it). The real-time range is Linux's as
containerd counts it, 34 to 64, whatever the C library of the node or of the image reserves.
"""
from __future__ import annotations

import signal

DEFAULT = "SIGTERM"
RTMIN, RTMAX = 34, 64
# The kernel's numbered signals by every name Python knows for them (aliases too: SIGCLD, SIGIOT).
_CLASSIC = {name: int(s) for name, s in signal.Signals.__members__.items() if int(s) < RTMIN}
_CANONICAL = {number: signal.Signals(number).name for number in set(_CLASSIC.values())}


def _realtime_name(number: int) -> str:
    if number == RTMIN:
        return "SIGRTMIN"
    if number == RTMAX:
        return "SIGRTMAX"
    # The CRI enum names RTMIN+1..15 from below and RTMAX-14..1 from above.
    return f"SIGRTMIN+{number - RTMIN}" if number - RTMIN <= 15 else f"SIGRTMAX-{RTMAX - number}"


def signal_name(number: int) -> str | None:
    """The canonical name of a signal number; None for one that is no signal."""
    if RTMIN <= number <= RTMAX:
        return _realtime_name(number)
    return _CANONICAL.get(number)


def signal_number(name: str) -> int | None:
    """The number of a name as the CRI or an image spells it; None for one that is no signal."""
    text = name.strip().upper()
    if text.isdigit():
        return int(text) if signal_name(int(text)) else None
    bare = "SIG" + text.removeprefix("SIG")
    if bare in _CLASSIC:
        return _CLASSIC[bare]
    for base, number, sign in (("SIGRTMIN", RTMIN, 1), ("SIGRTMAX", RTMAX, -1)):
        if bare == base:
            return number
        offset = bare.removeprefix(base + ("+" if sign > 0 else "-"))
        if offset != bare and offset.isdigit() and RTMIN <= number + sign * int(offset) <= RTMAX:
            return number + sign * int(offset)
    return None


def stop_signal(cri: str, image: str) -> str:
    """``cri``: the config's stop signal ("" for the runtime's default); ``image``: the image
    config's StopSignal as written. The name to stop with: the CRI's as it was given (always a
    valid name), else the image's in canonical form, else SIGTERM."""
    if cri:
        return cri
    number = signal_number(image) if image else None
    return DEFAULT if number is None else signal_name(number) or DEFAULT
