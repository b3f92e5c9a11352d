"""The registry app: departments, patients, courses, stored files, assessments, sign-offs
and the audit log."""
