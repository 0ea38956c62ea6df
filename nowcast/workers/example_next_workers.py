"""An example next workers module, for the built-in sleep and awaken workers.

NEMO_Nowcast ships one as ``nemo_nowcast.next_workers``; that name reaches this
module. A system keeps its own in its package (``next workers module:`` in its
config), and its ``after_<worker>`` functions return the workers to launch next.
"""

from __future__ import annotations

from nowcast.worker import NextWorker


def after_sleep(msg, config, checklist) -> list[NextWorker]:
    """After sleep succeeds, launch awaken; after a failure or crash, nothing."""
    if msg.type == "success":
        return [NextWorker("nemo_nowcast.workers.awaken")]
    return []


def after_awaken(msg, config, checklist) -> list[NextWorker]:
    """awaken ends the example's chain."""
    return []
