"""``python -m reirrad.web export_cohort FOLDER (--query TEXT | --manifest YAML)``."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reirrad.errors import InputError
from reirrad.io.cohort_manifest import manifest_registry_query, parse_registry_query
from reirrad.web.registry.cohort import write_cohort_manifest


class Command(BaseCommand):
    help = (
        "Export the case folders of the patients a registry query selects, and a manifest.csv "
        "for `reirrad cohort run`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", help="folder to export into (FOLDER/<patient>/case.yaml)")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--query", help="KEY=VALUE,... (department, site, start_from, ...)")
        group.add_argument("--manifest", help="YAML manifest with a registry: section")

    def handle(self, *args: Any, folder: str, query: str | None, manifest: str | None,
               **options: Any) -> None:  # fmt: skip
        try:
            if query is not None:
                parsed, source = parse_registry_query(query), "--registry"
            else:
                parsed, source = manifest_registry_query(manifest), manifest
                if parsed is None:
                    raise InputError("has no registry: section", source=manifest)
            path = write_cohort_manifest(parsed, Path(folder), source)
        except InputError as error:
            raise CommandError(" ".join(str(error).split())) from None
        self.stdout.write(f"wrote {path}")
