"""The process's models, each loaded once and shared by every caller.

Every stage that needs a model (the embedder, the span model, spaCy's sentence
splitter) asks for it through ``shared(kind, key, load)``: the first call for a
key runs ``load`` (under a lock, so two threads never load the same model twice)
and every later call gets the same object. ``key`` holds whatever makes two
models different (name, backend, threads...), so a setting that changes the
model gives a second one, and nothing else does. ``loads()`` says what was
loaded, for tests and the ``/healthz`` log.

``HF_HUB_OFFLINE`` is set once, in ``qa/__init__.py``, before anything imports
transformers: nothing is ever downloaded.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")

_models: dict[tuple[str, Hashable], object] = {}
_counts: Counter[str] = Counter()
_lock = threading.RLock()


def shared(kind: str, key: Hashable, load: Callable[[], T]) -> T:
    """The ``kind`` model for ``key``, loaded by ``load()`` the first time it is asked for."""
    slot = (kind, key)
    with _lock:
        if slot not in _models:
            _models[slot] = load()
            _counts[kind] += 1
        return _models[slot]  # type: ignore[return-value]


def loads() -> dict[str, int]:
    """How many models of each kind this process has loaded."""
    with _lock:
        return dict(_counts)


def forget() -> None:
    """Drop every model (tests only: the next ``shared`` call loads again)."""
    with _lock:
        _models.clear()
        _counts.clear()
