"""Settings: parsed once, typed, and refused with the key named when wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import Celery

from celery_pyncette import ConfigurationError, Pyncette
from celery_pyncette._config import Settings, settings_from


def test_defaults_match_the_documented_table() -> None:
    settings = settings_from({}, {})

    assert settings == Settings(
        url="sqlite:///celerybeat-pyncette.sqlite3",
        batch_size=100,
        poll_interval=1.0,
        lease_duration=timedelta(seconds=60),
        namespace="pyncette",
        skip_table_create=False,
    )


def test_app_conf_keys_and_keyword_overrides_are_parsed() -> None:
    settings = settings_from(
        {"pyncette_url": "memory://", "pyncette_batch_size": "50", "pyncette_lease_duration": 5},
        {"poll_interval": timedelta(milliseconds=250), "skip_table_create": "yes"},
    )

    assert settings.url == "memory://"
    assert settings.batch_size == 50
    assert settings.lease_duration == timedelta(seconds=5)
    assert settings.poll_interval == 0.25
    assert settings.skip_table_create is True


def test_django_namespaced_keys_are_accepted() -> None:
    app = Celery("django-like", set_as_current=False)
    app.config_from_object(
        type("Settings", (), {"CELERY_PYNCETTE_URL": "memory://", "CELERY_PYNCETTE_BATCH_SIZE": 7}),
        namespace="CELERY",
    )

    settings = Pyncette(app).settings

    assert settings.url == "memory://"
    assert settings.batch_size == 7


@pytest.mark.parametrize(
    ("conf", "overrides", "named"),
    [
        ({"pyncette_batchsize": 5}, {}, "pyncette_batchsize"),
        ({}, {"bacth_size": 5}, "bacth_size"),
        ({"pyncette_url": "mongo://x"}, {}, "mongo"),
        ({"pyncette_url": "not a url"}, {}, "pyncette_url"),
        ({"pyncette_batch_size": 0}, {}, "pyncette_batch_size"),
        ({"pyncette_batch_size": "many"}, {}, "pyncette_batch_size"),
        ({"pyncette_poll_interval": -1}, {}, "pyncette_poll_interval"),
        ({"pyncette_lease_duration": "soon"}, {}, "pyncette_lease_duration"),
        ({"pyncette_namespace": "bad name;"}, {}, "pyncette_namespace"),
        ({"pyncette_skip_table_create": "maybe"}, {}, "pyncette_skip_table_create"),
        ({"pyncette_health_port": "http"}, {}, "pyncette_health_port: expected a port number"),
        ({"pyncette_health_port": 0}, {}, "pyncette_health_port"),
        ({"pyncette_health_port": 65536}, {}, "pyncette_health_port"),
        ({"pyncette_health_port": True}, {}, "pyncette_health_port"),
        ({"pyncette_health_port": "0.0.0.0:8080"}, {}, "pyncette_health_port"),
        ({}, {"health_port": 8.5}, "pyncette_health_port"),
        ({"pyncette_health_host": ""}, {}, "pyncette_health_host"),
        ({"pyncette_health_host": 8080}, {}, "pyncette_health_host"),
    ],
)
def test_a_bad_setting_is_refused_with_its_key_named(
    conf: dict, overrides: dict, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        settings_from(conf, overrides)


def test_the_health_endpoint_is_off_by_default_and_takes_a_port_from_the_environment() -> None:
    assert settings_from({}, {}).health_port is None
    assert settings_from({"pyncette_health_port": None}, {}).health_port is None

    settings = settings_from({"PYNCETTE_HEALTH_PORT": "8080", "pyncette_health_host": "::"}, {})

    assert (settings.health_port, settings.health_host) == (8080, "::")
    assert settings_from({}, {}).health_host == "0.0.0.0"


def test_a_misspelt_health_key_gets_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'pyncette_health_port'"):
        settings_from({"pyncette_healthport": 8080}, {})


def test_a_misspelt_key_gets_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'pyncette_batch_size'"):
        settings_from({"pyncette_batchsize": 5}, {})


def test_an_unknown_scheme_gets_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'redis'"):
        settings_from({"pyncette_url": "reddis://x"}, {})


def test_keyword_overrides_are_checked_when_the_extension_is_built() -> None:
    app = Celery("bad", set_as_current=False)

    with pytest.raises(ConfigurationError, match="batch_size"):
        Pyncette(app, batch_size=-3)


def test_history_size_defaults_to_20_takes_0_and_refuses_bad_values() -> None:
    assert Settings().history_size == 20
    assert settings_from({}, {"history_size": 0}).history_size == 0
    assert settings_from({"pyncette_history_size": "5"}, {}).history_size == 5
    for bad in (-1, 1001, 2.5, True, "many"):
        with pytest.raises(ConfigurationError, match="pyncette_history_size"):
            settings_from({"pyncette_history_size": bad}, {})
