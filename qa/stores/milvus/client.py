"""Connecting to Milvus, and turning its failures into the store's errors.

One ``MilvusClient`` per location and process, made on first use and dropped when a call
fails for want of a server, so that the next call connects again: a server that restarts
is used again without restarting ``qa serve``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from qa.stores.base import StoreUnreachable

T = TypeVar("T")


class MilvusUnreachable(StoreUnreachable):
    """The Milvus server (or Lite file) cannot be reached or failed the call."""


@dataclass(frozen=True)
class MilvusLocation:
    """Where the collections live: ``uri`` as pymilvus takes it (a Lite file path or http(s)://host:port)."""

    uri: str
    collection: str = "film_reviews"  # prefix of the collections' names
    token: str = ""
    timeout: float = 10.0

    @property
    def shown(self) -> str:
        """The location as the user wrote it (for messages)."""
        return self.uri if self.uri.startswith(("http://", "https://")) else f"milvus-lite:{self.uri}"

    @property
    def passages(self) -> str:
        return f"{self.collection}_passages"

    @property
    def documents(self) -> str:
        return f"{self.collection}_documents"


_CLIENTS: dict[MilvusLocation, Any] = {}
_LOCK = threading.Lock()


# pymilvus pings an idle connection every 10 s; gRPC servers by default allow one ping in 5 minutes
# without calls and then close the connection with "too_many_pings" (the Milvus Lite server does, and
# gRPC prints it on stderr). Ping as often as they allow: a connection that breaks anyway is replaced
# on the next call (``call``).
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}


def client_for(location: MilvusLocation):
    """The process's client for ``location`` (connecting now if there is none)."""
    client = _CLIENTS.get(location)
    if client is None:
        with _LOCK:
            client = _CLIENTS.get(location)
            if client is None:
                from pymilvus import MilvusClient

                # pymilvus logs every failed call with a traceback; the store raises one clear error instead
                logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
                from pymilvus.exceptions import MilvusException

                try:
                    client = MilvusClient(uri=location.uri, token=location.token, timeout=location.timeout,
                                          grpc_options=GRPC_OPTIONS)
                except (MilvusException, OSError, RuntimeError) as err:
                    raise MilvusUnreachable(f"Milvus at {location.shown} is unreachable ({_reason(err)}); "
                                            "check that it is running and the address is right") from err
                _CLIENTS[location] = client
    return client


def forget(location: MilvusLocation) -> None:
    """Drop the client for ``location``: the next call connects again."""
    with _LOCK:
        client = _CLIENTS.pop(location, None)
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
            pass


def _reason(err: BaseException) -> str:
    text = getattr(err, "message", None) or str(err)
    return " ".join(str(text).split())[:300]


def call(location: MilvusLocation, action: Callable[[Any], T]) -> T:
    """``action(client)``, tried once more on a fresh connection if the first fails for want of one."""
    try:
        return _call_once(location, action)
    except MilvusUnreachable as err:
        if "load" in str(err) or "not exist" in str(err):
            raise
        return _call_once(location, action)  # e.g. a channel the server closed ("too many pings")


def _call_once(location: MilvusLocation, action: Callable[[Any], T]) -> T:
    """``action(client)``, with any failure of Milvus raised as ``MilvusUnreachable`` naming the location."""
    from pymilvus.exceptions import MilvusException

    try:
        return action(client_for(location))
    except MilvusException as err:
        forget(location)
        raise MilvusUnreachable(f"Milvus at {location.shown} failed: {_reason(err)}") from err
    except Exception as err:  # grpc errors and closed channels come through as many types
        if type(err).__module__.startswith(("grpc", "pymilvus")):
            forget(location)
            raise MilvusUnreachable(f"Milvus at {location.shown} is unreachable ({_reason(err)})") from err
        raise
