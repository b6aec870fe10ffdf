"""``celery -A examples.flask_app.make_celery worker``: the Celery app of a Flask app."""

from __future__ import annotations

from examples.flask_app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
