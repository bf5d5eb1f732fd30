"""The stop signal: the CRI's, else the image's STOPSIGNAL as Docker takes it, else SIGTERM."""
from __future__ import annotations

import pytest

from runtime.container.stopsignal import signal_name, signal_number, stop_signal


@pytest.mark.parametrize("cri, image, want", [
    ("", "", "SIGTERM"),
    ("SIGQUIT", "SIGUSR1", "SIGQUIT"),  # the CRI's wins
    ("SIGCLD", "", "SIGCLD"),  # the CRI's is kept as given, alias and all
    ("", "SIGUSR1", "SIGUSR1"),
    ("", "usr1", "SIGUSR1"),  # without SIG, in any case
    ("", "9", "SIGKILL"),  # a number
    ("", "SIGIOT", "SIGABRT"),  # an alias, canonical
    ("", "RTMIN+3", "SIGRTMIN+3"),
    ("", "SIGRTMAX-2", "SIGRTMAX-2"),
    ("", "SIGRTMIN", "SIGRTMIN"),
    ("", "64", "SIGRTMAX"),
    ("", "50", "SIGRTMAX-14"),  # the CRI enum names 50..63 from the top
    ("", "49", "SIGRTMIN+15"),
])
def test_stop_signal(cri: str, image: str, want: str) -> None:
    assert stop_signal(cri, image) == want


@pytest.mark.parametrize("image", ["SIGFOO", "0", "32", "33", "65", "-1", "RTMIN+-1", "SIGRTMAX-31", "SIG9",
                                   "4294967311"])
def test_an_image_signal_that_names_none_stops_with_sigterm(image: str) -> None:
    assert signal_number(image) is None
    assert stop_signal("", image) == "SIGTERM"


def test_every_signal_number_has_a_name_that_reads_back() -> None:
    numbers = [n for n in range(1, 65) if n not in (32, 33)]  # 32 and 33: the C library's own
    for n in numbers:
        name = signal_name(n)
        assert name is not None and signal_number(name) == n
    assert signal_name(32) is None and signal_name(0) is None
