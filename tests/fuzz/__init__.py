"""Fuzz suite of reirrad's command line: mutated inputs, one subprocess per run.

Mutators (``dicom_mutators``, ``case_mutators``, ``option_mutators``) turn a copy of a known
good input set into a wrong or harmless variant and say which (``expect``); ``runner`` runs
the CLI on it under a memory limit and a timeout and classifies the outcome; ``catalog``
draws cases deterministically from a seed.  See ``tests/fuzz/README.md``.
"""
