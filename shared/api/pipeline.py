"""The queue-triggered worker that takes every accepted raw record to FHIR."""

from __future__ import annotations

import azure.functions as func

from shared.api.context import get_context
from shared.names import RAW_QUEUE

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.queue_trigger(arg_name="msg", queue_name=RAW_QUEUE, connection="AzureWebJobsStorage")
def process_raw_record(msg: func.QueueMessage) -> None:
    get_context().worker.handle(msg.get_body(), msg.dequeue_count or 1)
