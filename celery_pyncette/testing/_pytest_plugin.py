"""The pytest plugin (entry point ``pytest11``): the ``pyncette_simulation`` fixture.

It simulates the ``Pyncette`` instance your ``pyncette`` fixture returns; options come from the
``pyncette_simulation`` marker::

    @pytest.fixture
    def pyncette():
        return myproject.pyncette

    @pytest.mark.pyncette_simulation(start=datetime(2026, 3, 8, tzinfo=timezone.utc))
    def test_reminder(pyncette_simulation):
        ...

Nothing is imported until the fixture is used, so the plugin costs nothing elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pyncette_simulation(start=None, url='memory://'): options of the pyncette_simulation "
        "fixture",
    )


@pytest.fixture
def pyncette_simulation(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A :class:`celery_pyncette.testing.Simulation` of the ``pyncette`` fixture's app."""
    from celery_pyncette.testing import simulate

    marker = request.node.get_closest_marker("pyncette_simulation")
    options = dict(marker.kwargs) if marker is not None else {}
    with simulate(request.getfixturevalue("pyncette"), **options) as simulation:
        yield simulation
