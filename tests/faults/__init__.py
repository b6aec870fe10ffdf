"""Fault tests: real ``celery beat`` and ``celery worker`` processes, real servers, real faults."""
