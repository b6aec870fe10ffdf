"""Did-you-mean: the known name closest to a misspelt one.

One helper for every place that names what a user probably meant: unknown settings
(:mod:`celery_pyncette._config`), unknown store schemes (:mod:`celery_pyncette.stores`) and
keywords that look like misspelt task options (:mod:`celery_pyncette._definitions`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: Similarity (difflib's ratio, 0..1) from which a word counts as a misspelling of a known name
#: for a hint, when every word must be known anyway (settings).
HINT_CUTOFF = 0.6


def closest(word: str, known: Iterable[str], *, cutoff: float = HINT_CUTOFF) -> str | None:
    """The name in ``known`` most similar to ``word`` with a ratio of at least ``cutoff``, if any.

    Deterministic for a given set of names (whatever order ``known`` comes in).
    """
    matches = difflib.get_close_matches(word, sorted(known), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(word: str, known: Iterable[str], *, cutoff: float = HINT_CUTOFF) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""`` when none is close."""
    hint = closest(word, known, cutoff=cutoff)
    return f"; did you mean {hint!r}?" if hint is not None else ""
