"""celery-pyncette: a Celery beat scheduler with Pyncette's model."""
