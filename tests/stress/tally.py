"""What a run saw: every answer by method and code, the answers still to be judged, the verdicts,
and the summary printed at the end."""
from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field

from tests.stress.call import Call, brief
from tests.stress.verdicts import Answer, Window, verdict


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str  # "seed S worker W call #N", or the invariant's name
    method: str = ""
    code: str = ""
    message: str = ""
    request: str = ""

    def __str__(self) -> str:
        if not self.method:
            return f"{self.where}: {self.rule}"
        return (f"{self.where}: {self.method} -> {self.code}: {self.rule}\n"
                f"      message: {self.message[:500]}\n      request: {self.request}")


@dataclass(frozen=True)
class _Failed:
    where: str
    call_request: str
    subjects: tuple[str, ...]
    answer: Answer


class Tally:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self.codes: Counter[tuple[str, str]] = Counter()
        self.valid_calls = 0
        self._failed: list[_Failed] = []
        self.violations: list[Violation] = []
        self.internals: list[Violation] = []  # INTERNAL answers the rule allows: worth a look all the same

    def record(self, worker: int, n: int, call: Call, answer: Answer) -> None:
        """Non-OK answers are kept (as text: hostile requests are big) to be judged once every
        outage window is known."""
        with self._lock:
            self.codes[(answer.method, answer.code)] += 1
            self.valid_calls += call.valid
            if answer.code != "OK":
                self._failed.append(_Failed(f"seed {self.seed} worker {worker} call #{n}", brief(call.request),
                                            call.subjects, answer))

    def flag(self, violation: Violation) -> None:
        with self._lock:
            self.violations.append(violation)

    def judge(self, windows: list[Window]) -> None:
        with self._lock:
            failed, self._failed = self._failed, []
        for f in failed:
            rule = verdict(f.answer, f.subjects, windows)
            if rule is not None:
                self.flag(Violation(rule, f.where, f.answer.method, f.answer.code, f.answer.message,
                                    f.call_request))
            elif f.answer.code == "INTERNAL":
                self.internals.append(Violation("allowed: names the object", f.where, f.answer.method,
                                                f.answer.code, f.answer.message, f.call_request))

    def calls(self) -> int:
        with self._lock:
            return sum(self.codes.values())


@dataclass
class Summary:
    seed: int
    threads: int
    seconds: float
    tally: Tally
    kills: Counter[str]
    skipped: Counter[str]
    leaks: list[str] = field(default_factory=list)
    incomplete: str = ""  # why the budget was not spent, if it was not

    def ok(self) -> bool:
        return not (self.tally.violations or self.leaks or self.incomplete)

    def violations_text(self) -> str:
        """Every violation, not one per kind."""
        return "\n".join(str(v) for v in self.tally.violations) + "\n"

    def text(self) -> str:
        t = self.tally
        lines = [(f"chaos: seed {self.seed}, {self.threads} threads, {t.calls()} calls "
                  f"({t.valid_calls} with valid arguments) in {self.seconds:.1f}s")]
        by_method: dict[str, Counter[str]] = {}
        for (method, code), n in t.codes.items():
            by_method.setdefault(method, Counter())[code] = n
        for method in sorted(by_method):
            codes = ", ".join(f"{code} {n}" for code, n in by_method[method].most_common())
            lines.append(f"  {method:26} {sum(by_method[method].values()):6}  {codes}")
        kills = ", ".join(f"{k} {n}" for k, n in sorted(self.kills.items())) or "none"
        skipped = ", ".join(f"{k} {n}" for k, n in sorted(self.skipped.items()))
        lines.append(f"kills: {kills}" + (f" (skipped, no target: {skipped})" if skipped else ""))
        if self.incomplete:
            lines.append(f"incomplete: {self.incomplete}")
        groups = grouped(t.violations)
        lines.append(f"violations: {len(t.violations)} ({len(groups)} kinds; one example of each)")
        lines += [f"  [{n}x] {v}" for v, n in groups]
        if t.internals:
            internals = grouped(t.internals)
            lines.append(f"INTERNAL answers allowed as runtime failures: {len(t.internals)} "
                         f"({len(internals)} kinds)")
            lines += [f"  [{n}x] {v}" for v, n in internals]
        lines.append(f"leaks: {len(self.leaks)}")
        lines += [f"  {leak}" for leak in self.leaks]
        lines.append("chaos: " + ("PASS" if self.ok() else "FAIL"))
        return "\n".join(lines)


def grouped(violations: list[Violation]) -> list[tuple[Violation, int]]:
    """One example per kind (rule, method, code, message with ids and numbers blanked), with counts."""
    kinds: dict[tuple[str, ...], list[Violation]] = {}
    for v in violations:
        shape = re.sub(r"[0-9a-f]{12,64}|\\d+", "#", v.message)
        kinds.setdefault((v.rule, v.method, v.code, shape), []).append(v)
    return sorted(((vs[0], len(vs)) for vs in kinds.values()), key=lambda e: -e[1])
