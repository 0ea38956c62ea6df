"""Workers that come with nowcast: sleep, awaken, rotate_logs, clear_checklist.

A system's own ``nowcast/workers`` package (NEMO_Nowcast's convention) is merged
with this one: see ``_nowcast_path``.
"""


def _merge() -> None:
    try:
        import _nowcast_path
    except ImportError:  # pragma: no cover - nowcast imported from a bare copy of its sources
        return
    _nowcast_path.merge(globals(), "workers")


_merge()
