"""Benchmarks: SE networks next to their base networks, across runtimes, on one machine.

    from se_keras.benchmark import Settings, run, report
    results = run(Settings(models=("se_resnet50",), runtimes=("xla", "tflite")))
    print(report.full_text(results))

Timings are interleaved (round-robin over every network and runtime of a model, several
rounds) and reported as medians, so the SE / base ratios are measured under the same load.
The command line is `se-keras benchmark`; `benchmarks/run.py` regenerates docs/benchmarks.md.
"""

from se_keras.benchmark.runtimes import DEFAULT_RUNTIMES, RUNTIMES, parse_runtimes
from se_keras.benchmark.suite import Settings, run

__all__ = ["DEFAULT_RUNTIMES", "RUNTIMES", "Settings", "parse_runtimes", "run"]
