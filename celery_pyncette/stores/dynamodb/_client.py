"""The boto3 session the DynamoDB store makes its clients from.

One session per process, created on first use: loading the service model is the slow part of a
client, and a session caches it. A session is not thread-safe, so clients are made under a lock
(the clients themselves are thread-safe). In a forked child, :func:`forget_session` replaces both:
a lock held by another thread at fork time would never be released there.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

_session_lock = threading.Lock()
_session: Any = None


def new_client(**options: Any) -> Any:
    """A DynamoDB client from this process's session, with ``options`` (region, endpoint,
    botocore config)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("dynamodb", **options)


def forget_session() -> None:
    """In a forked child: a fresh lock, and a session created again on next use."""
    global _session_lock, _session
    _session_lock, _session = threading.Lock(), None
