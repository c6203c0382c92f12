"""The speed promises of docs/performance.md and issues 2-3, measured in one run: ``make bench``.

``python -m benchmarks [--quick] [--only core|asgi|django|flask ...]``; see
``docs/performance.md`` for the method and the recorded figures.
"""
