"""The relay's benchmarks: each measured beside its ceiling, in the same run, on the same machine.

``python -m bench`` (or ``make bench``) runs everything in about 10 minutes; ``python -m bench
--quick`` is a smoke run of about two minutes. Results go to ``bench/results/<date>-<HHMM>.json``,
``.md`` and ``.png``; docs/performance.md says what each benchmark compares.
"""
