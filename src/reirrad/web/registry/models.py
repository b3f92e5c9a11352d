"""The registry's tables.

Rules that must hold whoever writes (a view, the admin, the worker, a shell) are enforced
here, in ``save``/``delete`` and the query sets, not in the views: a signed assessment and
its sign-off cannot be changed or deleted, an assessment's frozen inputs cannot change after
it was created, and the audit log is append-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from reirrad.web.registry import store


class Immutable(PermissionDenied):
    """Raised on an attempt to change or delete a record that must never change."""


# --- departments and who may do what ---------------------------------------------------


class Role(models.TextChoices):
    VIEWER = "viewer", "viewer"
    PLANNER = "planner", "planner"
    PHYSICIST = "physicist", "physicist"
    PHYSICIAN = "physician", "physician"
    ADMIN = "admin", "admin"


#: Roles that may start an assessment of a patient of their department.
ASSESS_ROLES = frozenset({Role.PLANNER, Role.PHYSICIST, Role.PHYSICIAN, Role.ADMIN})
#: Roles that may create and change patients, courses and files.
EDIT_ROLES = frozenset({Role.PLANNER, Role.PHYSICIST, Role.ADMIN})
#: Only physicians sign a report.
SIGN_ROLES = frozenset({Role.PHYSICIAN})


class Department(models.Model):
    name = models.CharField(max_length=200, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="departments"
    )

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    department = models.ForeignKey(Department, on_delete=models.CASCADE)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="one_role_per_department")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.department} ({self.role})"


# --- the content-addressed file store -------------------------------------------------------


class StoredObject(models.Model):
    """A file in the store (:mod:`reirrad.web.registry.store`), named by its SHA-256.

    One row per content: two uploads of the same bytes share it (the unique ``sha256``
    makes a concurrent second insert fail, and the store keeps the first copy).
    """

    class Kind(models.TextChoices):
        DICOM = "dicom", "DICOM object"
        DOCUMENT = "document", "source document"
        CASE = "case", "case file"
        RESULT = "result", "assessment result (JSON)"
        REPORT_HTML = "report_html", "report (HTML)"
        REPORT_PDF = "report_pdf", "report (PDF)"

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    original_name = models.CharField(max_length=255, blank=True)
    media_type = models.CharField(max_length=100, default="application/octet-stream")
    # DICOM identity (empty for other kinds)
    modality = models.CharField(max_length=16, blank=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True)
    series_description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            old = StoredObject.objects.filter(pk=self.pk).values("sha256", "size").first()
            if old and (old["sha256"], old["size"]) != (self.sha256, self.size):
                raise Immutable("a stored object's content address cannot change")
        super().save(*args, **kwargs)

    @property
    def path(self) -> Path:
        return store.object_path(self.sha256)

    @classmethod
    def from_chunks(cls, chunks: Iterable[bytes], **fields: Any) -> StoredObject:
        """Store the bytes, then return their row, created once: a concurrent creator of the
        same content loses on the unique hash and both get the one row."""
        return cls._row(*store.put_file_bytes(chunks), **fields)

    @classmethod
    def _row(cls, sha256: str, size: int, **fields: Any) -> StoredObject:
        found = cls.objects.filter(sha256=sha256).first()
        if found is not None:
            return found
        try:
            with transaction.atomic():
                return cls.objects.create(sha256=sha256, size=size, **fields)
        except IntegrityError:
            return cls.objects.get(sha256=sha256)

    @classmethod
    def from_linked_path(cls, path: str | Path, **fields: Any) -> StoredObject:
        """As :meth:`from_path` for a file never rewritten (hard-linked, not copied:
        :func:`~reirrad.web.registry.store.put_file_link`)."""
        fields.setdefault("original_name", Path(path).name[:255])
        return cls._row(*store.put_file_link(path), **fields)

    @classmethod
    def from_bytes(cls, data: bytes, **fields: Any) -> StoredObject:
        return cls.from_chunks([data], **fields)

    @classmethod
    def from_path(cls, path: str | Path, **fields: Any) -> StoredObject:
        fields.setdefault("original_name", Path(path).name[:255])
        with open(path, "rb") as handle:
            return cls.from_chunks(store.read_chunks(handle), **fields)

    def __str__(self) -> str:
        label = self.modality or self.kind
        return f"{label} {self.sha256[:12]} ({self.original_name})"


# --- patients, structures, courses -----------------------------------------------------------


class Patient(models.Model):
    """A patient of one department; other departments see it only through a share.

    The case file's ``patient`` section is in the columns; its ``diagnosis`` and
    ``recurrence`` sections and the case-level options (``tissue_defaults``, ``analysis``,
    ``constraints``, ``exploration``) are kept as written (validated JSON), since the
    registry does not query them.
    """

    class Sex(models.TextChoices):
        FEMALE = "female"
        MALE = "male"
        OTHER = "other"
        UNKNOWN = "unknown"

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="patients")
    identifier = models.CharField(max_length=200, help_text="anonymised id (case patient.id)")
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_date = models.DateField(null=True, blank=True)
    age_at_diagnosis = models.FloatField(null=True, blank=True)
    diagnosis = models.JSONField(null=True, blank=True)
    recurrence = models.JSONField(null=True, blank=True)
    case_options = models.JSONField(default=dict, blank=True)
    shared_with = models.ManyToManyField(
        Department, through="PatientShare", related_name="shared_patients", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["identifier"]
        constraints = [
            models.UniqueConstraint(
                fields=["department", "identifier"], name="patient_id_unique_in_department"
            )
        ]

    def __str__(self) -> str:
        return self.identifier


class PatientShare(models.Model):
    """An explicit share: ``department`` may view ``patient`` (read only)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE)
    department = models.ForeignKey(Department, on_delete=models.CASCADE)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient", "department"], name="share_once")]

    def clean(self) -> None:
        if self.department_id == self.patient.department_id:
            raise ValidationError("a patient is not shared with its own department")


class Structure(models.Model):
    """A case structure (``structures`` item): its role, organ key and tissue parameters."""

    class StructureRole(models.TextChoices):
        TARGET = "target"
        ORGAN_AT_RISK = "organ_at_risk", "organ at risk"
        EXTERNAL = "external"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="structures")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=20, choices=StructureRole.choices)
    organ = models.CharField(max_length=100, blank=True, help_text="key in the constraint sets")
    alpha_beta = models.FloatField(null=True, blank=True)
    recovery = models.JSONField(null=True, blank=True, help_text="recovery model name or spec")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["patient", "position"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "name"], name="structure_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Course(models.Model):
    """A course of radiotherapy, from DICOM or from a summary document."""

    class Status(models.TextChoices):
        PLANNED = "planned"
        DELIVERED = "delivered"
        INTERRUPTED = "interrupted"

    class Source(models.TextChoices):
        DICOM = "dicom", "DICOM"
        SUMMARY = "summary", "summary document"

    class Quality(models.TextChoices):
        VERIFIED = "verified", "verified against the source"
        UNVERIFIED = "unverified", "not verified"
        INCOMPLETE = "incomplete", "incomplete or estimated"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="courses")
    position = models.PositiveIntegerField(default=0)
    course_id = models.CharField(max_length=100, help_text="the course's id in the case file")
    label = models.CharField(max_length=300, blank=True)
    institution = models.CharField(max_length=200, blank=True)
    start = models.DateField()
    end = models.DateField()
    fractions = models.PositiveIntegerField()
    technique = models.CharField(max_length=300, blank=True)
    systemic_therapy = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DELIVERED)
    source = models.CharField(max_length=10, choices=Source.choices)
    source_document = models.ForeignKey(
        StoredObject, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data_quality = models.CharField(
        max_length=12, choices=Quality.choices, default=Quality.UNVERIFIED
    )
    data_quality_note = models.TextField(blank=True)
    #: The case file's ``dicom`` section (paths as written, relative to the case file),
    #: without ``structure_map``, which is in :class:`StructureMapping`.
    dicom = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["patient", "start", "position"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "course_id"], name="course_id_unique"),
            models.CheckConstraint(
                condition=models.Q(end__gte=models.F("start")), name="end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.course_id} ({self.start}..{self.end})"


class Prescription(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="prescriptions")
    position = models.PositiveIntegerField(default=0)
    target = models.CharField(max_length=200)
    dose_gy = models.FloatField()
    fractions = models.PositiveIntegerField()
    primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["course", "position"]

    @property
    def dose_per_fraction_gy(self) -> float:
        return self.dose_gy / self.fractions


class DoseStatistic(models.Model):
    """A typed-in physical dose statistic of a structure in a course (case ``doses``)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="dose_statistics")
    structure = models.ForeignKey(Structure, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)
    metric = models.CharField(max_length=30)
    value_gy = models.FloatField()

    class Meta:
        ordering = ["course", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "structure", "metric"], name="one_value_per_statistic"
            )
        ]


class ResponseObservation(models.Model):
    """A dated tumour-response observation of a patient (case ``follow_up.response``; its
    vocabularies and rules are the library's, :mod:`reirrad.core.follow_up`)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="responses")
    date = models.DateField()
    modality = models.CharField(max_length=20)
    site = models.CharField(max_length=20, default="local")
    size_mm = models.JSONField(null=True, blank=True, help_text="up to three diameters (mm)")
    suv_max = models.FloatField(null=True, blank=True)
    recist = models.CharField(max_length=4, blank=True)
    percist = models.CharField(max_length=4, blank=True)
    reported = models.TextField(blank=True)
    note = models.TextField(blank=True)
    #: order of entry, kept so an export lists the observations as they were written
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["patient", "date", "position"]

    @property
    def size_text(self) -> str:
        """The diameters as reported, e.g. ``28 x 24``."""
        return " x ".join(f"{v:g}" for v in self.size_mm or ())


class ToxicityObservation(models.Model):
    """A dated adverse event (CTCAE v5.0 term and grade) of a patient, or its documented
    absence (grade 0), attributed to a declared structure (case ``follow_up.toxicity``)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="toxicities")
    date = models.DateField()
    term = models.CharField(max_length=300)
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    structure = models.ForeignKey(
        Structure, null=True, blank=True, on_delete=models.PROTECT, related_name="toxicities"
    )
    attribution = models.CharField(max_length=20, blank=True)
    onset = models.CharField(max_length=10, blank=True)
    note = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["patient", "date", "position"]


class StructureMapping(models.Model):
    """Which ROI of the course's RTSTRUCT is the case structure (``dicom.structure_map``)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="structure_maps")
    structure = models.ForeignKey(Structure, on_delete=models.CASCADE, related_name="+")
    roi_name = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "structure"], name="one_roi_per_structure")
        ]


class CourseFile(models.Model):
    """A stored file of a course under the relative path the case file names it by."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="files")
    stored = models.ForeignKey(StoredObject, on_delete=models.PROTECT, related_name="course_files")
    path = models.CharField(max_length=500)

    class Meta:
        ordering = ["course", "path"]
        constraints = [
            models.UniqueConstraint(fields=["course", "path"], name="course_file_path_unique")
        ]

    def __str__(self) -> str:
        return self.path


class Upload(models.Model):
    """A DICOM upload (files or a zip) for a patient: what was stored and what was refused."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    #: ``[{"name": file name, "reason": why it was refused}]``
    refused = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class UploadItem(models.Model):
    """A stored DICOM object of an upload, under the name it was uploaded with."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="items")
    stored = models.ForeignKey(StoredObject, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=500)

    class Meta:
        ordering = ["upload", "name"]


# --- assessments and sign-off -------------------------------------------------------------------


class AssessmentQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        if self.filter(signoff__isnull=False).exists():
            raise Immutable("a signed assessment cannot be changed")
        return super().update(**kwargs)

    def delete(self) -> Any:
        if self.filter(signoff__isnull=False).exists():
            raise Immutable("a signed assessment cannot be deleted")
        return super().delete()


#: Fields fixed when an assessment is created (its inputs).
FROZEN_FIELDS = ("patient_id", "case_yaml", "input_hashes", "reirrad_version", "parameters")


class Assessment(models.Model):
    """One run of the library on a frozen case: inputs, outputs, status."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    courses = models.ManyToManyField(Course, related_name="assessments")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
    # frozen inputs
    case_yaml = models.TextField(help_text="the generated case file the run used")
    input_hashes = models.JSONField(help_text="SHA-256 of every input, by path")
    reirrad_version = models.CharField(max_length=40)
    parameters = models.JSONField(default=dict)
    # outputs
    result_json = models.ForeignKey(
        StoredObject, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    report_html = models.ForeignKey(
        StoredObject, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    report_pdf = models.ForeignKey(
        StoredObject, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    summary = models.JSONField(default=dict, blank=True, help_text="verdicts for the page")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: renewed by the worker while it runs the assessment (its lease; see runner.sweep_stale)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    task_id = models.CharField(max_length=64, blank=True)

    objects = AssessmentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"assessment {self.pk} of {self.patient} ({self.status})"

    @property
    def is_signed(self) -> bool:
        return self.pk is not None and SignOff.objects.filter(assessment_id=self.pk).exists()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            if self.is_signed:
                raise Immutable(f"assessment {self.pk} is signed and cannot be changed")
            old = Assessment.objects.filter(pk=self.pk).values(*FROZEN_FIELDS).first()
            if old is not None:
                changed = [f for f in FROZEN_FIELDS if old[f] != getattr(self, f)]
                if changed:
                    raise Immutable(
                        f"assessment {self.pk}: its inputs are frozen ({', '.join(changed)}); "
                        "start a new assessment instead"
                    )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_signed:
            raise Immutable(f"assessment {self.pk} is signed and cannot be deleted")
        return super().delete(*args, **kwargs)


@receiver(m2m_changed, sender=Assessment.courses.through)
def _courses_frozen(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    """An assessment's courses are chosen once, when it is created (before it is queued)."""
    if action.startswith("pre_") and isinstance(instance, Assessment):
        if instance.is_signed or instance.status != Assessment.Status.QUEUED:
            raise Immutable(f"assessment {instance.pk}: its courses cannot change")


class SignOffQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise Immutable("a sign-off cannot be changed")

    def delete(self) -> Any:
        raise Immutable("a sign-off cannot be deleted")


class SignOff(models.Model):
    """A physician's signature of an assessment's report PDF (by its SHA-256)."""

    assessment = models.OneToOneField(Assessment, on_delete=models.PROTECT, related_name="signoff")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20, choices=Role.choices)
    signed_at = models.DateTimeField(auto_now_add=True)
    pdf_sha256 = models.CharField(max_length=64)

    objects = SignOffQuerySet.as_manager()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None or not self._state.adding:
            raise Immutable("a sign-off cannot be changed")
        assessment = self.assessment
        if assessment.status != Assessment.Status.DONE or assessment.report_pdf is None:
            raise ValidationError("only a finished assessment with a PDF report can be signed")
        if assessment.report_pdf.sha256 != self.pdf_sha256:
            raise ValidationError("the signed PDF is not the assessment's report")
        if self.role not in SIGN_ROLES:
            raise PermissionDenied("only a physician signs a report")
        is_member = Membership.objects.filter(
            user_id=self.user_id, department_id=assessment.patient.department_id, role=self.role
        ).exists()
        if not is_member:
            raise PermissionDenied("the signer is not a physician of the patient's department")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise Immutable("a sign-off cannot be deleted")


# --- the audit log ---------------------------------------------------------------------------


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise Immutable("the audit log is append-only")

    def delete(self) -> Any:
        raise Immutable("the audit log is append-only")


class AuditEvent(models.Model):
    """One entry of the append-only audit log."""

    class Action(models.TextChoices):
        CREATE = "create"
        CHANGE = "change"
        VIEW_REPORT = "view_report", "view of a report"
        DOWNLOAD = "download"
        SIGN_OFF = "sign_off", "sign-off"
        EXPORT = "export"
        IMPORT = "import"
        LOGIN = "login"
        FAILED_LOGIN = "failed_login", "failed login"
        CONFIRM = "confirm"
        REJECT = "reject"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    object_type = models.CharField(max_length=50, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None or not self._state.adding:
            raise Immutable("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise Immutable("the audit log is append-only")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.object_type} {self.object_id}"


# --- the DICOM node (objects received by C-STORE, proposed courses) -----------------------------


class ReceivedObject(models.Model):
    """An object the DICOM listener received and registered into the store.

    One row per (SOP Instance UID, content hash): registering the same spool file twice
    (after a crash between the spool write and the registration) finds this row.
    """

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    stored = models.ForeignKey(StoredObject, on_delete=models.PROTECT, related_name="+")
    sop_instance_uid = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    spool_name = models.CharField(max_length=200)
    patient_identifier = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sop_instance_uid", "sha256"], name="received_once")
        ]


class DicomProposal(models.Model):
    """A course proposed from received objects, for a planner or physicist to confirm."""

    class State(models.TextChoices):
        PROPOSED = "proposed"
        CONFLICT = "conflict", "patient conflict"
        CONFIRMED = "confirmed"
        REJECTED = "rejected"

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.CASCADE, related_name="dicom_proposals"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PROPOSED)
    #: the plan the course is built around (one proposal per plan and department)
    plan_uid = models.CharField(max_length=64)
    patient_identifier = models.CharField(max_length=200)
    patient_name = models.CharField(max_length=200, blank=True)
    patient_birth_date = models.CharField(max_length=8, blank=True)
    plan_label = models.CharField(max_length=200, blank=True)
    start = models.DateField(null=True, blank=True)
    end = models.DateField(null=True, blank=True)
    date_source = models.CharField(max_length=200, blank=True)
    fractions = models.PositiveIntegerField(null=True, blank=True)
    #: stored-object ids: {"rtplan": id|None, "rtdose": [...], "rtstruct": id|None,
    #: "ct": [...], "registration": [...], "records": [...]}
    parts = models.JSONField(default=dict)
    missing = models.JSONField(default=list, blank=True)
    conflicts = models.JSONField(default=list, blank=True)
    #: What grouping found that a person must read (objects of another patient ID that refer
    #: to this plan, a REG linked by frame only, several REG objects).
    notes = models.JSONField(default=list, blank=True)
    course = models.ForeignKey(
        Course, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["department", "plan_uid"], name="one_proposal_per_plan")
        ]

    def __str__(self) -> str:
        return f"proposed course {self.plan_label or self.plan_uid} ({self.patient_identifier})"
