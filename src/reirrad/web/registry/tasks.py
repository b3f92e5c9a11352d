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


@task()
def prepare_send_task(assessment_id: int, user_id: int | None = None) -> str:
    """Write the send-back RTDOSEs of an assessment (:func:`..dicom_send.prepare`)."""
    from reirrad.web.registry.dicom_send import prepare

    return prepare(assessment_id, user_id)


@task()
def send_task(assessment_id: int, sha256s: list[str], user_id: int | None = None) -> str:
    """Send confirmed RTDOSEs to the planning system (:func:`..dicom_send.send`)."""
    from reirrad.web.registry.dicom_send import send

    return send(assessment_id, sha256s, user_id)


@task()
def retrieve_prior_task(patient_id: int, user_id: int | None = None) -> str:
    """Move a patient's prior RT objects from the PACS to this node (:mod:`..dicom_retrieve`)."""
    from reirrad.web.registry.dicom_retrieve import retrieve_prior

    return retrieve_prior(patient_id, user_id)
