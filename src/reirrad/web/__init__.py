"""The clinic service: a Django web application with a patient and course registry.

A top layer like :mod:`reirrad.cli`: it may import ``core``, ``io``, ``pipelines`` and
``present`` and holds no dose logic (assessments run through
:func:`reirrad.pipelines.run.run_case`); nothing below it imports it.

Configuration is read from the environment by :mod:`reirrad.web.settings`:
``REIRRAD_DATA`` (the data folder: SQLite database, file store, secret key),
``DATABASE_URL`` (PostgreSQL instead of SQLite), ``REIRRAD_DEBUG``,
``REIRRAD_ALLOWED_HOSTS``, ``REIRRAD_HTTPS``. ``python -m reirrad.web COMMAND`` runs a
Django management command (``migrate``, ``db_worker``, ``createsuperuser``...).
"""

from __future__ import annotations

import os
from pathlib import Path

SETTINGS_MODULE = "reirrad.web.settings"


def default_data_dir() -> Path:
    """The data folder when ``REIRRAD_DATA`` is not set: ``~/.local/share/reirrad``."""
    return Path.home() / ".local" / "share" / "reirrad"


def setup(data_dir: str | Path | None = None) -> None:
    """Configure Django for this process (the data folder first, if given) and load the apps."""
    if data_dir is not None:
        os.environ["REIRRAD_DATA"] = str(Path(data_dir).resolve())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()
