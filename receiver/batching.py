"""Dynamic batching of Decode calls, in the manner of Triton's dynamic batcher.

Frames from concurrent calls wait in one queue. A single decode worker takes
the oldest frame, then whatever else is queued, waiting at most
`max_queue_delay` seconds after the oldest frame arrived for more, up to
`max_batch_size` frames, and decodes them together (pipeline.decode_frames:
one sampler run for the generative codecs' frames). Each caller gets the
result or error of its own frame: a frame's noise comes from its own id, so
batching changes what runs together, never what a frame decodes to.

One worker on purpose: decoding already uses every core (torch and ONNX
Runtime thread pools), and two batches side by side would only compete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from semcom.common.wire.frames import Frame

from .metrics import ReceiverMetrics


@dataclass
class _Waiting:
    frame: Frame
    arrived: float  # time.perf_counter() when the call arrived
    result: asyncio.Future


class DynamicBatcher:
    def __init__(self, decode_many: Callable[[list[Frame]], list], max_batch_size: int, max_queue_delay: float,
                 metrics: ReceiverMetrics):
        if max_batch_size < 1:
            raise ValueError(f"--max-batch-size: {max_batch_size}, need at least 1")
        if max_queue_delay < 0:
            raise ValueError(f"--max-queue-delay-ms: {max_queue_delay * 1000:g}, need 0 or more")
        self._decode_many = decode_many
        self.max_batch_size, self.max_queue_delay = max_batch_size, max_queue_delay
        self._metrics = metrics
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._worker: asyncio.Task | None = None
        # Every batch decodes on this one thread, the one that loaded the models too (on_decode_thread), not on
        # whichever of the loop's default executor threads is free: torch's OpenMP runs its parallel regions
        # fast only from the first thread that ran one. Measured (fp32 UNet step, 2-core Xeon): 40 ms from that
        # thread, 66 ms from any other, the main thread included; elementwise ops 2-3x slower.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="decode")

    async def decode(self, frame: Frame, arrived: float):
        """(what decode_many returned for the frame, seconds its batch took); raises the frame's error."""
        if self._worker is None:  # started lazily, inside the server's event loop
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="decode-batcher")
        waiting = _Waiting(frame, arrived, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(waiting)
        result = await waiting.result
        if isinstance(result, BaseException):
            raise result
        return result

    async def on_decode_thread(self, function: Callable, *args):
        """function(*args) on the thread batches decode on (loading the models there: see __init__)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    async def aclose(self) -> None:
        """Stops the worker (the server has drained its calls by now)."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        self._thread.shutdown(wait=False)

    async def _work(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            for waiting in batch:
                self._metrics.queue_seconds.observe(started - waiting.arrived)
            self._metrics.batch_size.observe(len(batch))
            try:
                results = await self.on_decode_thread(self._decode_many, [waiting.frame for waiting in batch])
            except Exception as error:  # a fault of the batch as a whole: every caller in it hears of it
                results = [error] * len(batch)
            seconds = time.perf_counter() - started
            for waiting, result in zip(batch, results):
                if not waiting.result.done():  # the caller may have gone (deadline, cancel)
                    waiting.result.set_result(result if isinstance(result, BaseException) else (result, seconds))

    async def _next_batch(self) -> list[_Waiting]:
        batch = [await self._queue.get()]
        deadline = batch[0].arrived + self.max_queue_delay
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return [waiting for waiting in batch if not waiting.result.done()]  # skip callers that gave up
