"""``python -m reirrad.web export_case PATIENT_ID FOLDER``."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reirrad.errors import InputError
from reirrad.web.registry.casefile import export_case
from reirrad.web.registry.models import Patient


class Command(BaseCommand):
    help = "Export a patient as a case folder (case.yaml and its DICOM files)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("patient", type=int, help="the patient's database id")
        parser.add_argument("folder", help="new or empty folder to write into")

    def handle(self, *args: Any, patient: int, folder: str, **options: Any) -> None:
        target = Path(folder)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise CommandError(f"{folder}: give a new or empty folder")
        try:
            found = Patient.objects.get(pk=patient)
        except Patient.DoesNotExist:
            raise CommandError(f"no patient with id {patient}") from None
        try:
            path = export_case(found, target)
        except InputError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"wrote {path}")
