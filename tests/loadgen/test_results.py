"""What the load generator reports: the workers' results merged, with
nearest-rank percentiles of their merged latency histograms."""

from __future__ import annotations

from collections import Counter

import pytest

from cachegrid.loadgen.plan import Plan, Target
from cachegrid.loadgen.results import WorkerResult, bucket, merge


def test_the_histogram_is_exact_below_2048_us_and_within_a_thousandth_above() -> None:
    assert [bucket(us) for us in (0, 1, 2047)] == [0, 1, 2047]
    for us in (2048, 5000, 1_000_001, 123_456_789):
        assert bucket(us) <= us < bucket(us) * 1.001


def test_merge_adds_the_counts_and_takes_percentiles_of_the_merged_histogram() -> None:
    first = WorkerResult(
        requests=70,
        gets=60,
        sets=9,
        keys=69,
        errors=Counter({"HTTP 404": 1}),
        histogram=Counter({1: 50, 2: 20}),
        max_us=2,
        started=10.0,
        finished=12.0,
        cpu_seconds=0.5,
    )
    second = WorkerResult(
        requests=30,
        gets=20,
        sets=8,
        keys=28,
        errors=Counter({"HTTP 404": 1, "timeout": 1}),
        histogram=Counter({2: 25, 3: 4, 10: 1}),
        max_us=10,
        started=10.5,
        finished=14.0,
        cpu_seconds=1.5,
    )
    report = merge(Target.parse("http://127.0.0.1:8080"), Plan(batch=0, pipeline=2), 5, [first, second])
    # Merged: {1: 50, 2: 45, 3: 4, 10: 1}, in microseconds.
    assert report.latency_ms == {"p50": 0.001, "p95": 0.002, "p99": 0.003, "max": 0.01}
    document = report.to_dict()
    assert (document["requests"], document["gets"], document["sets"], document["keys"]) == (100, 80, 17, 97)
    assert document["errors"] == 3 and document["errors_by_kind"] == {"HTTP 404": 2, "timeout": 1}
    assert document["duration_seconds"] == 4.0  # first start to last finish
    assert document["requests_per_second"] == 25.0
    assert document["generator_cpu_percent"] == 50.0
    assert (document["concurrency"], document["processes"], document["pipeline"]) == (5, 2, 2)


def test_a_report_of_nothing_has_no_rates() -> None:
    document = merge(Target.parse("http://127.0.0.1:8080"), Plan(), 1, [WorkerResult()]).to_dict()
    assert document["requests"] == 0 and document["requests_per_second"] is None
    assert document["latency_ms"] == pytest.approx({"p50": 0, "p95": 0, "p99": 0, "max": 0})
