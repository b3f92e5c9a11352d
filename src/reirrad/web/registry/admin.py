"""Admin registrations. Signed assessments, sign-offs and the audit log are read-only here
too (the models refuse changes whoever asks)."""

from typing import Any

from django.contrib import admin

from reirrad.web.registry import models as m


class MembershipInline(admin.TabularInline):
    model = m.Membership
    extra = 1


@admin.register(m.Department)
class DepartmentAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(m.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "department", "role"]
    list_filter = ["department", "role"]


class StructureInline(admin.TabularInline):
    model = m.Structure
    extra = 0


class ShareInline(admin.TabularInline):
    model = m.PatientShare
    extra = 0


@admin.register(m.Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["identifier", "department", "sex", "created_at"]
    list_filter = ["department"]
    search_fields = ["identifier"]
    inlines = [StructureInline, ShareInline]


class PrescriptionInline(admin.TabularInline):
    model = m.Prescription
    extra = 0


class CourseFileInline(admin.TabularInline):
    model = m.CourseFile
    extra = 0
    raw_id_fields = ["stored"]


@admin.register(m.Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["course_id", "patient", "start", "end", "fractions", "status", "source"]
    list_filter = ["status", "source", "data_quality"]
    search_fields = ["course_id", "patient__identifier"]
    inlines = [PrescriptionInline, CourseFileInline]


@admin.register(m.StoredObject)
class StoredObjectAdmin(admin.ModelAdmin):
    list_display = ["sha256", "kind", "modality", "size", "original_name", "created_at"]
    list_filter = ["kind", "modality"]
    search_fields = ["sha256", "sop_instance_uid", "original_name"]

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(m.Assessment)
class AssessmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "patient", "status", "created_by", "created_at", "finished_at"]
    list_filter = ["status"]


@admin.register(m.SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = ["assessment", "user", "role", "signed_at", "pdf_sha256"]


@admin.register(m.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "action", "object_type", "object_id", "remote_addr"]
    list_filter = ["action"]
    search_fields = ["username", "object_id"]
