"""Shared fixtures: the repository's examples, the third-party DICOM data and the phantoms.

The third-party data live beside the repository in ``../shared/data`` (see its README: real
Eclipse plans, the Nelms analytical DVH set, reader edge cases); CI has the same layout.
Phantom cases are written once per session (they take seconds) and must not be modified by
a test: copy them first (``copy_case``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (``examples/``, ``docs/``)."""
    return ROOT


@pytest.fixture(scope="session")
def examples() -> Path:
    """``examples/`` with the bundled case files of the published case report."""
    return ROOT / "examples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: third-party DICOM test data with provenance."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"third-party test data not found at {SHARED_DATA} (see docs/CONTRIBUTING.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def eclipse_breast(shared_data: Path) -> Path:
    """A real Eclipse breast-boost plan with the planning system's DVHs in its RTDOSE."""
    return shared_data / "dicompyler-core-example"


@pytest.fixture(scope="session")
def eclipse_prostate(shared_data: Path) -> Path:
    """A real Eclipse prostate plan whose organs overlap the PTV, with reference DVHs."""
    return shared_data / "eclipse-prostate"


@pytest.fixture(scope="session")
def nelms(shared_data: Path) -> Path:
    """The Nelms et al. (Med Phys 2015;42:4435) analytical DVH benchmark."""
    return shared_data / "nelms-dvh-analytical"


@pytest.fixture(scope="session")
def phantom_case_2(tmp_path_factory) -> Path:
    """``case.yaml`` of the two-course DICOM phantom (analytic doses; do not modify)."""
    from reirrad.io.phantom import write_example_case

    return write_example_case(tmp_path_factory.mktemp("phantom2"), n_courses=2)


@pytest.fixture(scope="session")
def phantom_case_3(tmp_path_factory) -> Path:
    """``case.yaml`` of the three-course DICOM phantom (REG objects; do not modify)."""
    from reirrad.io.phantom import write_example_case

    return write_example_case(tmp_path_factory.mktemp("phantom3"), n_courses=3)


@pytest.fixture
def copy_case(tmp_path):
    """Copy a phantom case directory to a test's own folder (to mutate it)."""

    def copy(case: Path) -> Path:
        target = tmp_path / case.parent.name
        shutil.copytree(case.parent, target)
        return target / case.name

    return copy
