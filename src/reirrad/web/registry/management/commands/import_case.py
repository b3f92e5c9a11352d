"""``python -m reirrad.web import_case CASE.yaml --department NAME``."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reirrad.errors import InputError
from reirrad.web.registry.casefile import import_case
from reirrad.web.registry.models import Department


class Command(BaseCommand):
    help = "Import a case file (and its DICOM files) as a new patient of a department."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("case", help="YAML case file")
        parser.add_argument("--department", required=True, help="department name")

    def handle(self, *args: Any, case: str, department: str, **options: Any) -> None:
        try:
            target = Department.objects.get(name=department)
        except Department.DoesNotExist:
            raise CommandError(f"no department named {department!r}") from None
        try:
            patient = import_case(case, target)
        except InputError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"imported patient {patient.identifier} (id {patient.pk})")
