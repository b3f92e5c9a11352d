"""Server-rendered pages, one module per part of the registry. Every object is found through
:mod:`..permissions`, so one the user may not see is a 404 whatever its URL; every state change
is a POST behind CSRF."""

from django.http import Http404


def posted_id(text: str) -> int:
    """A primary key from a form field; anything else is "no such object", like a bad URL."""
    if not text.isdigit():
        raise Http404("no such object")
    return int(text)
