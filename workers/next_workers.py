"""What the manager launches after each worker of the example system reports.

This is the file to edit to change the cycle. The manager calls
``after_<worker>(msg, config, checklist)`` when ``<worker>`` reports; ``msg.type``
is the message type it sent (``success``, ``failure`` or ``crash``) and
``checklist`` the state of the day. Return a list of ``NextWorker`` to launch, or
``(list, {names})`` to launch the list now and hold back what the named workers'
``after_*`` functions return until every one of them has reported. The manager
re-imports this file when it changes; no restart needed.

    prepare_run -> get_weather + get_rivers -> run_model -> make_plots
                                                         -> clear_checklist -> rotate_logs
"""

from __future__ import annotations

from nowcast import NextWorker


def _run_date(checklist) -> list[str]:
    return ["--run-date", checklist["run"]["run date"]]


def after_prepare_run(msg, config, checklist):
    if msg.type != "success":
        return []
    outage = checklist["run"].get("simulate outage")
    weather = ["--simulate-outage"] if outage == "weather" else []
    rivers = ["--simulate-outage"] if outage == "rivers" else []
    forcing = [
        NextWorker("workers.get_weather", _run_date(checklist) + weather),
        NextWorker("workers.get_rivers", _run_date(checklist) + rivers),
    ]
    # launch both now; hold what follows them until both have reported
    return forcing, {"get_weather", "get_rivers"}


def _run_model(config, checklist) -> list[NextWorker]:
    # here, or as a batch job on the cluster: the config's `example system: model host`
    host = config["example system"].get("model host", "localhost")
    return [NextWorker("workers.run_model", _run_date(checklist), host=host)]


def after_get_weather(msg, config, checklist):
    # success or not, the model decides: it fails cleanly on missing input
    return _run_model(config, checklist)


def after_get_rivers(msg, config, checklist):
    return _run_model(config, checklist)


def after_run_model(msg, config, checklist):
    if msg.type == "success":
        return [NextWorker("workers.make_plots", _run_date(checklist))]
    # publish a notice that there is no forecast today; keep the checklist for the operators
    return [NextWorker("workers.make_plots", _run_date(checklist) + ["--model-failed"])]


def after_make_plots(msg, config, checklist):
    # this run's own payload, not the checklist's entry: a dict payload updates the
    # entry, so a notice an earlier failed run of the day left there stays in it
    if msg.type == "success" and "notice" not in (msg.payload or {}):
        return [NextWorker("nowcast.workers.clear_checklist")]
    return []


def after_clear_checklist(msg, config, checklist):
    return [NextWorker("nowcast.workers.rotate_logs")] if msg.type == "success" else []


def after_rotate_logs(msg, config, checklist):
    return []
