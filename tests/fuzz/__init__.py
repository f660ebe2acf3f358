"""Coverage-guided fuzzing (atheris) of the pure parsers that read attacker-controlled bytes.

``python -m tests.fuzz --seconds 60`` fuzzes every target for a bounded time (the seconds are
shared between them); ``--target callback`` picks one. Needs ``pip install -e '.[fuzz]'``.
"""
