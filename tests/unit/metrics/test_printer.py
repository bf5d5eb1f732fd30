"""The fast printer's own parts: value formatting and the series text it keeps between scrapes."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
from prometheus_client.utils import floatToGoString

from metrics.exposition import ContainerPrinter, go_float
from metrics.families import FAMILIES
from runtime.stats.sample import Labels, Sample

VALUES = [0, 1, 7, 999_999, 1_000_000, 1_200_000, 1_234_567, 10**10, 10**15, 2**53 - 1, 2**53 + 1, 2**63, -1, -1_000_000,
          0.0, 0.5, 1e-9, 123456.789, 1234567.5, 1e21, -2.5, math.inf, -math.inf]


@pytest.mark.parametrize("value", VALUES)
def test_go_float_prints_what_prometheus_client_prints(value: float) -> None:
    assert go_float(value) == floatToGoString(value)


def test_go_float_prints_nan_like_prometheus_client() -> None:
    assert go_float(math.nan) == floatToGoString(math.nan) == "NaN"


def sample(container: str, start: int) -> Sample:
    return Sample(timestamp_ns=5_000_000_000, start_time_ns=start * 1_000_000_000,
                  labels=Labels(id=f"/pod/{container}", name=container, container=container))


def test_kept_series_text_follows_the_samples_of_the_last_scrape() -> None:
    printer = ContainerPrinter()
    first = printer.text([sample("a", 1), sample("b", 2)])
    assert 'container="a"' in first and 'container="b"' in first
    # Same labels, new values: the kept text is reused, the values are this scrape's.
    again = printer.text([sample("a", 3)])
    assert 'container_start_time_seconds{container="a",id="/pod/a",image="",name="a",namespace="",pod=""} 3.0\n' \
        in again
    assert 'container="b"' not in again
    assert printer.text([]) == ""


def test_a_sample_with_other_labels_gets_its_own_text() -> None:
    printer = ContainerPrinter()
    s = sample("a", 1)
    printer.text([s])
    renamed = replace(s, labels=replace(s.labels, pod="p"))
    assert 'pod="p"' in printer.text([renamed])


def test_families_without_series_print_no_header() -> None:
    text = ContainerPrinter(FAMILIES).text([sample("a", 1)])
    assert "# HELP container_start_time_seconds " in text
    assert "container_network_receive_bytes_total" not in text  # no network in this sample
