"""Lease tokens and task ids: random version 4 UUIDs in the forms ``uuid`` gives them."""

from __future__ import annotations

import uuid

from celery_pyncette import _ids as ids


def test_task_ids_are_random_version_4_uuids_in_their_canonical_text() -> None:
    made = ids.task_ids(2000) + ids.task_ids(1)

    assert len(set(made)) == len(made)
    for task_id in made:
        parsed = uuid.UUID(task_id)
        assert str(parsed) == task_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_lease_tokens_are_random_version_4_uuids_as_32_hex_digits() -> None:
    tokens = ids.lease_tokens(2000)

    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        parsed = uuid.UUID(hex=token)
        assert parsed.hex == token
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert ids.lease_tokens(0) == []
    assert ids.task_ids(0) == []
