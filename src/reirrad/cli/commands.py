"""Imports every command module so that each registers its commands on the app."""

# ruff: noqa: F401, I001
# (one line per command module, so parallel additions never conflict)
from reirrad.cli import assess
from reirrad.cli import constraints
from reirrad.cli import prognosis
from reirrad.cli import dvh
from reirrad.cli import explore
from reirrad.cli import report
from reirrad.cli import accumulate
from reirrad.cli import phantom
from reirrad.cli import serve
from reirrad.cli import pet
from reirrad.cli import dicom
from reirrad.cli import cohort
