"""What routes share: the pipeline, and the reading slots that bound how many questions run at once."""
from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from qa.answering.pipeline import Pipeline, Result
from qa.serving.schemas import AskRequest

BUSY_WAIT_SECONDS = 2.0  # how long a request waits for a free reading slot before a 503


class Busy(Exception):
    """Every reading slot stayed taken for ``BUSY_WAIT_SECONDS``."""


class Asker:
    """Runs the pipeline in a worker thread, at most ``slots`` questions at once (the API and the chat)."""

    def __init__(self, pipeline: Pipeline, slots: int):
        self.pipeline = pipeline
        self._slots = asyncio.Semaphore(slots)

    async def __call__(self, req: AskRequest) -> Result:
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=BUSY_WAIT_SECONDS)
        except asyncio.TimeoutError:
            raise Busy from None
        try:
            return await run_in_threadpool(self._ask, req)
        finally:
            self._slots.release()

    def _ask(self, req: AskRequest) -> Result:
        return self.pipeline.ask(req.question, req.top_k, req.filters, [t.model_dump() for t in req.history])
