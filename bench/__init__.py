"""Benchmark harness: dslc's torch and JAX targets against hand-written references.

Not part of the test suite; run ``python -m bench.run`` (see ``bench/README.md``).
"""
