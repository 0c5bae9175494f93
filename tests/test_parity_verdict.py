"""benchmarks/parity_basicsr.py judges a statistic by the 95 % interval of its difference, not the point estimate."""

from __future__ import annotations

from benchmarks.parity_basicsr import interval_verdict


def test_interval_verdicts():
    # the x4 gradient energy of the 300-batch run: +11.3 % +- 14 % against 10 %: not a difference, unresolved
    assert interval_verdict(0.113, 0.14, 0.10) == "unresolved"
    assert interval_verdict(-0.016, 0.047, 0.10) == "ok"  # the 2000-batch run
    assert interval_verdict(0.20, 0.05, 0.10) == "DIFFERS"  # significant and beyond the tolerance
    assert interval_verdict(0.05, 0.04, 0.10) == "ok"  # significant but inside the tolerance
