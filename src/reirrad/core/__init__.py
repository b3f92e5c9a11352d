"""Pure computation: radiobiology, recovery, metrics, geometry, DVH, assessment.

Nothing in this package reads or writes files or knows about the CLI; a test
(`tests/test_architecture.py`) enforces that it never imports ``reirrad.io`` or
``reirrad.cli``.
"""
