"""Background jobs on the database-backed queue (django-tasks' database backend), run by its
worker: ``python -m reirrad.web db_worker``, which ``reirrad serve`` starts. A queued job is a
row in the database, so it waits there through a restart of the web server or the worker."""

from django_tasks import task

from reirrad.web.registry.models import Assessment
from reirrad.web.registry.runner import run_assessment


@task()
def run_assessment_task(assessment_id: int) -> str:
    """Run one assessment (:func:`reirrad.web.registry.runner.run_assessment`)."""
    return run_assessment(assessment_id)


def enqueue_run(assessment_id: int) -> str:
    """Put the run of an assessment on the database queue; return the job id."""
    result = run_assessment_task.enqueue(assessment_id)
    Assessment.objects.filter(pk=assessment_id).update(task_id=str(result.id))
    return str(result.id)
