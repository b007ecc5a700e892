"""InfluxDB 1.x over the v1 HTTP API (`/write` line protocol, `/query` InfluxQL), with httpx.

`Storage` is the interface the consumer and live state use; a v2/token writer
(influxdb-client) can implement it later for InfluxDB 2.x/Cloud users.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from cloud_ingest.errors import StorageRejected, StorageUnavailable
from cloud_ingest.pipeline.settings import InfluxSettings


@dataclass
class Series:
    """One InfluxQL result series."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


class Storage(Protocol):
    """Where tap points go and how they are read back."""

    def ensure_database(self) -> None: ...

    def write(self, lines: Sequence[str]) -> None:
        """Store points; StorageUnavailable means retry later, StorageRejected means bad data."""

    def query(self, influxql: str) -> list[Series]: ...

    def close(self) -> None: ...


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def duration_text(days: int) -> str:
    """A duration of whole days as SHOW RETENTION POLICIES writes it ("0s": forever)."""
    return f"{days * 24}h0m0s" if days else "0s"


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text[:500]


class InfluxV1(Storage):
    """A persistent httpx client to one InfluxDB database; time precision is microseconds."""

    def __init__(self, settings: InfluxSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.database = settings.database
        auth = None
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            auth = httpx.BasicAuth(settings.username, password)
        self._client = client or httpx.Client(
            base_url=settings.url, auth=auth, timeout=settings.timeout_s
        )

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.post(path, **kwargs)
        except httpx.TransportError as exc:
            raise StorageUnavailable(
                f"InfluxDB at {self.settings.url} unreachable ({type(exc).__name__}: {exc}); "
                "will retry"
            ) from None

    def ensure_database(self) -> None:
        """Create the database with its retention policy as the default, or set the duration.

        A new database gets `retention_policy` (default) with `retention_days`. A database made
        before (its default policy `autogen`, kept forever) keeps its default policy, whose
        duration is set instead: making another policy the default would hide every point
        already stored from queries. Both statements are idempotent in InfluxDB 1.x.
        """
        db = quote_ident(self.database)
        days = self.settings.retention_days
        duration = f"{days}d" if days else "INF"
        default = self.default_policy()
        if default is None:
            self._query_raw(
                f"CREATE DATABASE {db} WITH DURATION {duration} "
                f"NAME {quote_ident(self.settings.retention_policy)}",
                with_db=False,
            )
            default = self.default_policy()
        if default is not None and default[1] != duration_text(days):
            self._query_raw(
                f"ALTER RETENTION POLICY {quote_ident(default[0])} ON {db} "
                f"DURATION {duration} DEFAULT",
                with_db=False,
            )

    def default_policy(self) -> tuple[str, str] | None:
        """(name, duration as InfluxDB shows it) of the database's default retention policy;
        None when the database does not exist."""
        try:
            results = self._query_raw(
                f"SHOW RETENTION POLICIES ON {quote_ident(self.database)}", with_db=False
            )
        except StorageRejected as exc:
            if "database not found" in str(exc):
                return None
            raise
        for result in results:
            for series in result.get("series", []):
                cols = series["columns"]
                for row in series.get("values", []):
                    rp = dict(zip(cols, row, strict=False))
                    if rp.get("default"):
                        return str(rp["name"]), str(rp["duration"])
        return None

    def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        body = ("\n".join(lines) + "\n").encode()
        response = self._post(
            "/write", params={"db": self.database, "precision": "u"}, content=body
        )
        status = response.status_code
        if status == 204:
            return
        message = _error_text(response)
        if status >= 500:
            raise StorageUnavailable(f"InfluxDB write failed ({status}): {message}; will retry")
        if status == 404:
            # "database not found": someone dropped it; recreate and let the caller retry.
            self.ensure_database()
            raise StorageUnavailable(f"InfluxDB: {message}; database recreated, will retry")
        # A 400 "partial write" means InfluxDB stored the other points and names the bad
        # ones (e.g. "field type conflict ... dropped=1"); the caller isolates them.
        raise StorageRejected(f"InfluxDB rejected the write ({status}): {message}", status)

    def _query_raw(self, influxql: str, *, with_db: bool = True) -> list[dict[str, Any]]:
        data = {"q": influxql}
        params = {"epoch": "u", "chunked": "true", "chunk_size": "10000"}
        if with_db:
            params["db"] = self.database
        response = self._post("/query", params=params, data=data)
        if response.status_code >= 500:
            raise StorageUnavailable(f"InfluxDB query failed ({response.status_code})")
        if response.status_code != 200:
            raise StorageRejected(
                f"InfluxDB refused query ({response.status_code}): {_error_text(response)}",
                response.status_code,
            )
        # Chunked responses are one JSON document per line.
        results: list[dict[str, Any]] = []
        for line in response.text.splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            if "error" in doc:
                raise StorageRejected(f"InfluxDB query error: {doc['error']}")
            for result in doc.get("results", []):
                if "error" in result:
                    raise StorageRejected(f"InfluxDB query error: {result['error']}")
                results.append(result)
        return results

    def query(self, influxql: str) -> list[Series]:
        """Run InfluxQL; times come back as integer microseconds. Chunks are merged."""
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], Series] = {}
        for result in self._query_raw(influxql):
            for raw in result.get("series", []):
                tags = raw.get("tags") or {}
                key = (raw["name"], tuple(sorted(tags.items())))
                if key in merged:
                    merged[key].values.extend(raw.get("values", []))
                else:
                    merged[key] = Series(raw["name"], raw["columns"], raw.get("values", []), tags)
        return list(merged.values())
