"""``python -m reirrad.web check_store``: the file store against its database rows."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reirrad.web.registry.consistency import check_consistency as check_store


class Command(BaseCommand):
    help = (
        "Report files in the store without a database row, rows without their file, and "
        "files whose content does not match their SHA-256 (exit 1 when any is found)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--no-hash", action="store_true", help="skip re-hashing every file (faster)"
        )

    def handle(self, *args: Any, no_hash: bool, **options: Any) -> None:
        report = check_store(rehash=not no_hash)
        for kind, items in report.items():
            for item in items:
                self.stdout.write(f"{kind}: {item}")
        if any(report.values()):
            raise CommandError(", ".join(f"{len(v)} {k}" for k, v in report.items() if v))
        self.stdout.write("store consistent")
