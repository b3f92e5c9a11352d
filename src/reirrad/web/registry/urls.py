from django.urls import path

from reirrad.web.registry.views import (
    assessments,
    courses,
    dicom_intake,
    dicom_retrieve,
    dicom_send,
    exports,
    follow_up,
    patient_forms,
    patients,
    uploads,
)

app_name = "registry"
urlpatterns = [
    path("", patients.patient_list, name="patients"),
    path("patients/new/", patient_forms.patient_new, name="patient_new"),
    path("patients/import/", patients.patient_import, name="patient_import"),
    path("patients/<int:pk>/", patients.patient_detail, name="patient"),
    path(
        "patients/<int:pk>/structures/",
        patient_forms.patient_structures,
        name="patient_structures",
    ),
    path("patients/<int:pk>/export/", patients.patient_export, name="patient_export"),
    path("patients/<int:pk>/assessments/new/", assessments.assessment_new, name="assessment_new"),
    path("patients/<int:pk>/courses/new/", courses.summary_course_new, name="summary_course_new"),
    path("patients/<int:pk>/uploads/new/", uploads.upload_new, name="upload_new"),
    path(
        "patients/<int:pk>/follow-up/<str:kind>/new/",
        follow_up.observation_edit,
        name="observation_new",
    ),
    path(
        "patients/<int:pk>/follow-up/<str:kind>/<int:obs_pk>/",
        follow_up.observation_edit,
        name="observation",
    ),
    path(
        "patients/<int:pk>/retrieve-prior/",
        dicom_retrieve.retrieve_prior,
        name="retrieve_prior",
    ),
    path("uploads/<int:pk>/", uploads.upload_detail, name="upload"),
    path("uploads/<int:pk>/course/", uploads.upload_course, name="upload_course"),
    path("courses/<int:pk>/", courses.course_detail, name="course"),
    path("courses/<int:pk>/mapping/", courses.course_mapping, name="course_mapping"),
    path("courses/<int:pk>/document/", courses.course_document, name="course_document"),
    path("courses/<int:pk>/files/<int:file_pk>/", courses.course_file, name="course_file"),
    path("incoming/", dicom_intake.incoming, name="dicom_incoming"),
    path("incoming/<int:pk>/", dicom_intake.proposal_detail, name="dicom_proposal"),
    path("assessments/<int:pk>/", assessments.assessment_detail, name="assessment"),
    path("assessments/<int:pk>/status/", assessments.assessment_status, name="assessment_status"),
    path("assessments/<int:pk>/sign/", assessments.assessment_sign, name="assessment_sign"),
    path("assessments/<int:pk>/dicom-send/", dicom_send.dicom_send, name="dicom_send"),
    path(
        "assessments/<int:pk>/export/<str:name>/",
        exports.assessment_export,
        name="assessment_export",
    ),
    path(
        "assessments/<int:pk>/figures/<int:n>/",
        exports.assessment_figure,
        name="assessment_figure",
    ),
    path(
        "assessments/<int:pk>/<str:output>/",
        assessments.assessment_output,
        name="assessment_output",
    ),
]
