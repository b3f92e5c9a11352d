"""Python snippets the web tests run in a child process (``python -c``), against a data
folder the child's environment names."""

#: Import the bundled NPC case into a new department and queue an assessment of it; prints
#: the assessment's id.
QUEUE = """
import sys
from reirrad.web import setup
setup()
from django.contrib.auth import get_user_model
from reirrad.web.registry.assessments import start_assessment
from reirrad.web.registry.casefile import import_case
from reirrad.web.registry.models import Department, Membership
department = Department.objects.create(name="RT")
user = get_user_model().objects.create_user("planner")
Membership.objects.create(user=user, department=department, role="planner")
patient = import_case(sys.argv[1], department)
print(start_assessment(patient, user).pk)
"""
