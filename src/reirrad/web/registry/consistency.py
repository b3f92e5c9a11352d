"""The registry's consistency check: the file store against its rows, and the DICOM node's
spool against its registrations (``reirrad check-store``, ``python -m reirrad.web
check_store``).

It sits above :mod:`.store` and :mod:`.dicom_intake` so that the store, which the models
use, does not depend on the intake, which uses the models.
"""

from __future__ import annotations

from reirrad.web.registry.dicom_intake import check_spool
from reirrad.web.registry.store import check_store


def check_consistency(*, rehash: bool = True) -> dict[str, list[str]]:
    """:func:`.store.check_store`'s findings plus ``spool_unregistered``: spool files of the
    DICOM node that a crash left unregistered (the listener's start registers them)."""
    report = check_store(rehash=rehash)
    report["spool_unregistered"] = check_spool()
    return report
