"""Timing on a shared, noisy machine: interleaved rounds and medians.

Every task runs once per round, in the given order on even rounds and in reverse on odd
ones, so a burst of load from another process falls on all of them alike and neighbours stay
neighbours (order them in the pairs to be compared). The median over rounds drops the bursts;
`paired_ratio` compares two tasks round by round, which cancels the load they shared.
"""

import os
import resource
import statistics
import time


def interleave(tasks, rounds, warmup=1, min_seconds=0.0, progress=None):
    """Seconds per call of each task: `{name: [one value per round]}`.

    Args:
        tasks: `{name: callable}`; each call does one unit of work (one batch).
        rounds: how many times every task is timed (odd rounds run in reverse order).
        warmup: untimed calls of each task first (compilation, allocation, caches).
        min_seconds: in each round, call a task repeatedly until this much time passed and
            record the mean per call (for tasks too short to time once).
        progress: optional `callable(round_index)` called after each round.
    """
    for task in tasks.values():
        for _ in range(warmup):
            task()
    names = list(tasks)
    samples = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            samples[name].append(_time(tasks[name], min_seconds))
        if progress is not None:
            progress(index)
    return samples


def _time(task, min_seconds):
    calls, start = 0, time.perf_counter()
    while True:
        task()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def median(values):
    return statistics.median(values)


def paired_ratio(numerator, denominator):
    """Median over rounds of `numerator[i] / denominator[i]`: two tasks timed in the same
    rounds, compared under the load each round had."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def spread(values):
    """Relative half-width of the middle half of `values` (interquartile range / 2 / median):
    how much the machine's noise moved this task."""
    if len(values) < 4:
        return float("nan")
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / 2 / statistics.median(values)


def peak_rss_bytes():
    """The process's peak resident set size so far.

    Linux: `VmHWM` of /proc/self/status, which starts afresh at exec (`ru_maxrss` does not:
    a child forked from a large parent inherits the parent's peak).
    """
    status = _proc_status()
    if "VmHWM" in status:
        return status["VmHWM"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024


def current_rss_bytes():
    """The process's resident set size now (Linux; elsewhere the peak)."""
    return _proc_status().get("VmRSS") or peak_rss_bytes()


def _proc_status():
    try:
        with open("/proc/self/status") as file:
            lines = [line.split() for line in file if line.startswith(("VmHWM", "VmRSS"))]
    except OSError:
        return {}
    return {fields[0].rstrip(":"): int(fields[1]) * 1024 for fields in lines}  # kB


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")
