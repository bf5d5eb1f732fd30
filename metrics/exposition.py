"""The text exposition format (0.0.4) of the container families, written directly: a scrape of a
full node prints tens of thousands of series, and prometheus_client's generic printer validates
and escapes every label of every line. Here each series' labels are printed once and kept while
the container runs. The output is byte for byte what prometheus_client's generate_latest prints for
the same families (tests/unit/metrics/test_exposition_golden.py holds them equal); OpenMetrics and
everything else (pycrid's own metrics, the process collector) still go through prometheus_client.
"""
from __future__ import annotations

import gzip
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, gzip_accepted
from prometheus_client.exposition import generate_latest as generic_text
from prometheus_client.utils import floatToGoString

from metrics.families import FAMILIES, Family, base_values
from runtime.stats.sample import Labels, Sample

_TYPE = {"counter": "counter", "gauge": "gauge", "unknown": "untyped"}
# floatToGoString prints an int below 10**6 as itself plus ".0", and from 7 digits on with an
# exponent; an int below 2**53 is exact as a float, so both forms come straight from its digits.
_PLAIN_INT_BELOW = 1_000_000
_EXACT_INT_BELOW = 2**53
# prometheus_client leaves floatToGoString unannotated; it takes a number and returns its text.
_float_to_go: Callable[[float], str] = floatToGoString


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def go_float(value: float) -> str:
    """floatToGoString(value) (prometheus_client's), without the float detour for ints: most
    values of a scrape are byte counts and counters, and this is its hottest line."""
    if type(value) is int and 0 <= value < _EXACT_INT_BELOW:
        if value < _PLAIN_INT_BELOW:
            return f"{value}.0"
        digits = str(value)
        significant = digits.rstrip("0")
        mantissa = f"{significant[0]}.{significant[1:]}" if len(significant) > 1 else significant
        return f"{mantissa}e+{len(digits) - 1:02d}"
    return _float_to_go(value)


def _head(family: Family) -> str:
    help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {family.name} {help_text}\n# TYPE {family.name} {_TYPE[family.type]}\n"


def series_prefix(family: Family, labels: tuple[str, ...], extra: tuple[str, ...]) -> str:
    """'name{a="x",b="y"} ': the labels sorted by name, as prometheus_client prints them."""
    pairs = sorted(zip(family.label_names, (*labels, *extra)))
    return family.name + "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in pairs) + "} "


@dataclass(frozen=True)
class _SeriesText:
    """One sample's 'name{labels} ' texts, per family (by index in the printer's families)."""

    single: list[str | None]  # of the family's one series, for families with ``value``
    extra: list[dict[tuple[str, ...], str]]  # by extra label values, for the other families


class ContainerPrinter:
    """Writes the container families for a list of samples.

    A container's labels do not change while it runs, so each series' 'name{labels} ' is kept
    from one scrape to the next (for the samples of the last scrape only): a scrape then formats
    just the values. Two scrapes at once share the kept text; both only ever add the same
    strings, so neither sees a wrong one.
    """

    def __init__(self, families: Sequence[Family] = FAMILIES) -> None:
        self._families = tuple(families)
        self._heads = [_head(f) for f in self._families]
        self._kept: dict[Labels, _SeriesText] = {}

    def _texts(self, samples: Sequence[Sample]) -> list[_SeriesText]:
        kept, n = self._kept, len(self._families)
        now: dict[Labels, _SeriesText] = {}
        texts = []
        for s in samples:
            t = now.get(s.labels) or kept.get(s.labels) or _SeriesText([None] * n, [{} for _ in range(n)])
            now[s.labels] = t
            texts.append(t)
        self._kept = now
        return texts

    def text(self, samples: Sequence[Sample]) -> str:
        texts = self._texts(samples)
        singles = [t.single for t in texts]  # the hot loop indexes these lists directly
        out: list[str] = []
        for i, family in enumerate(self._families):
            lines: list[str] = []
            add = lines.append
            if (single := family.value) is not None:  # one series or none, no extra labels
                for s, kept in zip(samples, singles):
                    v = single(s)
                    if v is None:
                        continue
                    prefix = kept[i]
                    if prefix is None:
                        prefix = kept[i] = series_prefix(family, base_values(s), ())
                    if type(v) is int and 0 <= v < _PLAIN_INT_BELOW:  # go_float, inlined
                        add(f"{prefix}{v}.0\n")
                    else:
                        add(f"{prefix}{go_float(v)}\n")
                if lines:
                    out.append(self._heads[i])
                    out.extend(lines)
                continue
            values = family.values
            for s, t in zip(samples, texts):
                found = values(s)
                if found == ():  # most families are one series or none: skip the loop for none
                    continue
                known = t.extra[i]
                for extra, value in found:
                    prefix = known.get(extra)
                    if prefix is None:
                        prefix = known[extra] = series_prefix(family, base_values(s), extra)
                    if type(value) is int and 0 <= value < _PLAIN_INT_BELOW:  # go_float, inlined
                        add(f"{prefix}{value}.0\n")
                    else:
                        add(f"{prefix}{go_float(value)}\n")
            if lines:  # like the Go client, a family without series is not printed
                out.append(self._heads[i])
                out.extend(lines)
        return "".join(out)


def text_accepted(accept: str) -> bool:
    """Whether the client takes the text format. Then it gets it, even where it prefers OpenMetrics
    (Prometheus does), as from Go's exporters by default: the same samples, printed by the fast
    path above rather than prometheus_client's (a third of an idle agent's CPU, scraped every 15 s)."""
    if not accept.strip():
        return True
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media in ("text/plain", "text/*", "*/*") and _quality(params) > 0:
            return True
    return False


def _quality(params: list[str]) -> float:
    """A media range's q: 1 without one, or with one that does not parse (as before: only a q of
    zero refuses)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


def metrics_app(text: Callable[[], str], full: CollectorRegistry) -> WSGIApplication:
    """A WSGI app like prometheus_client's, with ``text()`` (the whole text exposition, fast)
    for the plain text format, and prometheus_client's encoders over ``full`` for OpenMetrics and
    ?name[]= filters."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        if environ["REQUEST_METHOD"] != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET")])
            return [b""]
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("200 OK", [])
            return [b""]
        accept = environ.get("HTTP_ACCEPT", "")
        plain = text_accepted(accept)
        encoder, content_type = (generic_text, CONTENT_TYPE_PLAIN_0_0_4) if plain else choose_encoder(accept)
        params = parse_qs(environ.get("QUERY_STRING", ""))
        if encoder is generic_text and "name[]" not in params:
            output = text().encode()
        else:
            output = encoder(full.restricted_registry(params["name[]"]) if "name[]" in params else full)
        headers = [("Content-Type", content_type)]
        remote = not _loopback(environ.get("REMOTE_ADDR", ""))
        if remote and gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            # Level 1: the text repeats itself so much that it still shrinks ~15x, at a seventh of
            # the CPU of the default level 9 (50 ms for a 100-container node here). A client on
            # loopback (the default address) gets it plain: there the bytes are free, the CPU not.
            output = gzip.compress(output, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [output]

    return app
