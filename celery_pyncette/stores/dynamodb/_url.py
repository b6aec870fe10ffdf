"""The ``dynamodb://REGION/TABLE`` URL of the DynamoDB store, parsed and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from celery_pyncette.errors import ConfigurationError

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")  # us-east-1, us-gov-west-1, local (DynamoDB Local)
_FLAGS = {"1": True, "true": True, "yes": True, "on": True}
_FLAGS.update({"0": False, "false": False, "no": False, "off": False})
_KNOWN_PARAMS = ("endpoint_url", "skip_table_create")


@dataclass(frozen=True, slots=True)
class DynamoDBSettings:
    """What a ``dynamodb://`` URL says."""

    region: str | None
    table: str
    endpoint_url: str | None = None
    skip_table_create: bool = False


def parse_url(url: str) -> DynamoDBSettings:
    """Parse ``dynamodb://REGION/TABLE?endpoint_url=...&skip_table_create=1``.

    Raises :class:`ConfigurationError` naming what is wrong (unknown parameters included).
    """
    try:
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigurationError(f"pyncette_url: malformed DynamoDB URL {url!r}: {exc}") from None
    example = "dynamodb://us-east-1/my-table"
    if parts.scheme.lower() != "dynamodb" or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(f"pyncette_url: {url!r} is not a DynamoDB URL like {example}")
    region = parts.netloc or None
    if region is not None and not _REGION.fullmatch(region):
        raise ConfigurationError(f"pyncette_url: {region!r} is not an AWS region (in {url!r})")
    table = parts.path[1:]
    if not _TABLE_NAME.fullmatch(table):
        raise ConfigurationError(
            f"pyncette_url: {table!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -) "
            f"in {url!r}; expected e.g. {example}"
        )
    names = [name for name, _ in params]
    unknown = sorted({n for n in names if n not in _KNOWN_PARAMS})
    if unknown:
        raise ConfigurationError(
            f"pyncette_url: unknown DynamoDB URL parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(_KNOWN_PARAMS)})"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigurationError(f"pyncette_url: DynamoDB URL parameter(s) repeated: {repeated}")
    values = dict(params)
    endpoint = values.get("endpoint_url")
    if endpoint is not None:
        target = urlsplit(endpoint)
        if target.scheme not in {"http", "https"} or not target.hostname:
            raise ConfigurationError(
                f"pyncette_url: endpoint_url {endpoint!r} is not an http(s) URL"
            )
    flag = values.get("skip_table_create", "0").lower()
    if flag not in _FLAGS:
        raise ConfigurationError(f"pyncette_url: skip_table_create={flag!r} is not 1/0/true/false")
    return DynamoDBSettings(region, table, endpoint, _FLAGS[flag])
