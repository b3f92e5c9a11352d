from django.urls import path

from reirrad.web.registry import views

app_name = "registry"
urlpatterns = [
    path("", views.patient_list, name="patients"),
    path("patients/import/", views.patient_import, name="patient_import"),
    path("patients/<int:pk>/", views.patient_detail, name="patient"),
    path("patients/<int:pk>/export/", views.patient_export, name="patient_export"),
    path("patients/<int:pk>/assessments/new/", views.assessment_new, name="assessment_new"),
    path("patients/<int:pk>/courses/new/", views.summary_course_new, name="summary_course_new"),
    path("patients/<int:pk>/uploads/new/", views.upload_new, name="upload_new"),
    path("uploads/<int:pk>/", views.upload_detail, name="upload"),
    path("uploads/<int:pk>/course/", views.upload_course, name="upload_course"),
    path("courses/<int:pk>/", views.course_detail, name="course"),
    path("courses/<int:pk>/mapping/", views.course_mapping, name="course_mapping"),
    path("courses/<int:pk>/document/", views.course_document, name="course_document"),
    path("courses/<int:pk>/files/<int:file_pk>/", views.course_file, name="course_file"),
    path("assessments/<int:pk>/", views.assessment_detail, name="assessment"),
    path("assessments/<int:pk>/status/", views.assessment_status, name="assessment_status"),
    path("assessments/<int:pk>/sign/", views.assessment_sign, name="assessment_sign"),
    path("assessments/<int:pk>/<str:output>/", views.assessment_output, name="assessment_output"),
]
