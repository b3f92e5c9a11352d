from django.urls import path

from reirrad.web.registry.views import assessments, courses, patient_forms, patients, uploads

app_name = "registry"
urlpatterns = [
    path("", patients.patient_list, name="patients"),
    path("patients/new/", patient_forms.patient_new, name="patient_new"),
    path("patients/import/", patients.patient_import, name="patient_import"),
    path("patients/<int:pk>/", patients.patient_detail, name="patient"),
    path("patients/<int:pk>/export/", patients.patient_export, name="patient_export"),
    path("patients/<int:pk>/assessments/new/", assessments.assessment_new, name="assessment_new"),
    path("patients/<int:pk>/courses/new/", courses.summary_course_new, name="summary_course_new"),
    path("patients/<int:pk>/uploads/new/", uploads.upload_new, name="upload_new"),
    path("uploads/<int:pk>/", uploads.upload_detail, name="upload"),
    path("uploads/<int:pk>/course/", uploads.upload_course, name="upload_course"),
    path("courses/<int:pk>/", courses.course_detail, name="course"),
    path("courses/<int:pk>/mapping/", courses.course_mapping, name="course_mapping"),
    path("courses/<int:pk>/document/", courses.course_document, name="course_document"),
    path("courses/<int:pk>/files/<int:file_pk>/", courses.course_file, name="course_file"),
    path("assessments/<int:pk>/", assessments.assessment_detail, name="assessment"),
    path("assessments/<int:pk>/status/", assessments.assessment_status, name="assessment_status"),
    path("assessments/<int:pk>/sign/", assessments.assessment_sign, name="assessment_sign"),
    path(
        "assessments/<int:pk>/<str:output>/",
        assessments.assessment_output,
        name="assessment_output",
    ),
]
