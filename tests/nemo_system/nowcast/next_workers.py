"""Functions to calculate lists of workers to launch after previous workers
end their work."""

from nemo_nowcast import NextWorker


def after_download_weather(msg, config, checklist):
    """After the download, make the forcing; sleep alongside (a race group)."""
    if msg.type != "success":
        return []
    run_date = checklist["weather"]["run date"]
    next_workers = [
        NextWorker("nowcast.workers.make_forcing", args=["--run-date", run_date]),
        NextWorker("nemo_nowcast.workers.sleep", args=["--sleep-time", "0"]),
    ]
    return next_workers, {"make_forcing", "sleep"}


def after_make_forcing(msg, config, checklist):
    next_workers = {
        "crash": [],
        "failure": [],
        "success": [NextWorker("nemo_nowcast.workers.clear_checklist")],
    }
    return next_workers[msg.type]


def after_sleep(msg, config, checklist):
    return []


def after_clear_checklist(msg, config, checklist):
    next_workers = {
        "crash": [],
        "failure": [],
        "success": [NextWorker("nemo_nowcast.workers.rotate_logs")],
    }
    return next_workers[msg.type]


def after_rotate_logs(msg, config, checklist):
    return []
