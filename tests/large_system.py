"""A large nowcast system shaped like real operational ones (NEMO_Nowcast's
SalishSeaNowcast in particular): 36 workers in a package of their own, message
types per run type, race-condition groups, a worker that asks for a checklist
entry, scheduled workers, workers on remote hosts named literally and through
the config, a NEMO-style config with the system's own keys beside nowcast's, and NEMO_Nowcast's distributed
logging keys (``logging: publisher``, per-process ``zmq: ports: logging``).

``write(directory)`` writes it; ``nowcast check`` must find no error in it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

RUN_TYPES = ["nowcast", "forecast", "forecast2"]

# name: message types beyond crash (a "{run}" type stands for one per run type)
WORKERS = {
    "download_weather": [
        "success 00",
        "failure 00",
        "success 06",
        "failure 06",
        "success 12",
        "failure 12",
    ],
    "collect_weather": ["success 00", "failure 00", "success 06", "failure 06"],
    "collect_river_data": ["success", "failure"],
    "make_runoff_file": ["success", "failure"],
    "get_onc_ctd": ["success", "failure"],
    "get_onc_ferry": ["success", "failure"],
    "collect_NeahBay_ssh": ["success 00", "failure 00", "success 06", "failure 06"],
    "make_ssh_files": [
        "success nowcast",
        "failure nowcast",
        "success forecast2",
        "failure forecast2",
    ],
    "grib_to_netcdf": [
        "success nowcast+",
        "failure nowcast+",
        "success forecast2",
        "failure forecast2",
    ],
    "crop_gribs": ["success 00", "failure 00", "success 06", "failure 06"],
    "make_live_ocean_files": ["success", "failure"],
    "upload_forcing": [
        "success nowcast+",
        "failure nowcast+",
        "success forecast2",
        "failure forecast2",
    ],
    "make_forcing_links": [
        "success nowcast+",
        "failure nowcast+",
        "success forecast2",
        "failure forecast2",
    ],
    "run_NEMO": ["success {run}", "failure {run}"],
    "watch_NEMO": ["success {run}", "failure {run}"],
    "make_fvcom_boundary": ["success", "failure"],
    "run_fvcom": ["success", "failure"],
    "watch_fvcom": ["success", "failure"],
    "run_ww3": ["success {run}", "failure {run}"],
    "watch_ww3": ["success {run}", "failure {run}"],
    "download_results": ["success {run}", "failure {run}"],
    "download_fvcom_results": ["success", "failure"],
    "download_wwatch3_results": ["success {run}", "failure {run}"],
    "split_results": ["success", "failure"],
    "make_plots": ["success {run}", "failure {run}"],
    "make_surface_current_tiles": ["success", "failure"],
    "make_feeds": ["success {run}", "failure {run}"],
    "ping_erddap": ["success", "failure"],
    "update_forecast_datasets": ["success {run}", "failure {run}"],
    "archive_tarball": ["success", "failure"],
    "launch_remote_worker": ["success", "failure"],
    "run_NEMO_hindcast": ["success", "failure"],
    "watch_NEMO_hindcast": ["success", "failure"],
    "clear_checklist": ["success", "failure", "clear checklist"],
    "rotate_logs": ["success", "failure"],
    "checklist_report": ["success", "failure", "need"],
}

# Workers whose success/failure functions return the message type as an f-string
# (the run type or forecast hour comes from the command line): not literal.
COMPUTED = {
    n
    for n, types in WORKERS.items()
    if any(" " in t and t.split()[0] in ("success", "failure") for t in types)
}

WORKER = '''
"""{doc}"""
import logging

import arrow
from nowcast import NowcastWorker, WorkerError

NAME = "{name}"
logger = logging.getLogger(NAME)


def main():
    worker = NowcastWorker(NAME, description=__doc__, package="mysys.workers")
    worker.init_cli()
    worker.cli.add_argument("--run-type", default="nowcast")
    worker.cli.add_date_option("--run-date", arrow.now().floor("day"), "Date of the run.")
    worker.run({name}, success, failure)


def success(parsed_args):
    logger.info("{name} done")
    {success}


def failure(parsed_args):
    logger.critical("{name} failed")
    {failure}


def {name}(parsed_args, config, tell_manager):
    {body}
    return {{"run date": parsed_args.run_date.format("YYYY-MM-DD")}}


if __name__ == "__main__":
    main()
'''

NEXT_WORKERS = '''
"""What follows what in the large test system."""
from nowcast import NextWorker


def after_download_weather(msg, config, checklist):
    next_workers = {
        "crash": [],
        "failure 00": [], "failure 06": [], "failure 12": [],
        "success 00": [NextWorker("mysys.workers.crop_gribs", args=["00"])],
        "success 06": [NextWorker("mysys.workers.crop_gribs", args=["06"])],
        "success 12": [
            NextWorker("mysys.workers.collect_river_data", args=["Fraser"]),
            NextWorker("mysys.workers.get_onc_ctd", args=["SCVIP"]),
            NextWorker("mysys.workers.get_onc_ferry", args=["TWDP"]),
        ],
    }
    return next_workers[msg.type]


def after_collect_weather(msg, config, checklist):
    return []


def after_crop_gribs(msg, config, checklist):
    if msg.type.startswith("success"):
        return [NextWorker("mysys.workers.grib_to_netcdf", args=["nowcast+"])]
    return []


def after_collect_river_data(msg, config, checklist):
    if msg.type == "success":
        return [NextWorker("mysys.workers.make_runoff_file")]
    return []


def after_make_runoff_file(msg, config, checklist):
    return []


def after_get_onc_ctd(msg, config, checklist):
    return []


def after_get_onc_ferry(msg, config, checklist):
    return []


def after_collect_NeahBay_ssh(msg, config, checklist):
    if msg.type == "success 00":
        return [NextWorker("mysys.workers.make_ssh_files", args=["nowcast"])]
    return []


def after_make_ssh_files(msg, config, checklist):
    return []


def after_grib_to_netcdf(msg, config, checklist):
    next_workers = []
    if msg.type == "success nowcast+":
        next_workers.append(NextWorker("mysys.workers.make_live_ocean_files"))
        for host in config["run"]["enabled hosts"]:
            if config["run"]["enabled hosts"][host]["run types"]:
                next_workers.append(
                    NextWorker("mysys.workers.upload_forcing", args=[host, "nowcast+"], host="localhost")
                )
    return next_workers


def after_make_live_ocean_files(msg, config, checklist):
    return []


def after_upload_forcing(msg, config, checklist):
    host_name = msg.payload and list(msg.payload)[0]
    if msg.type.startswith("success"):
        return [NextWorker("mysys.workers.make_forcing_links", args=[host_name, "nowcast+"], host=host_name)]
    return []


def after_make_forcing_links(msg, config, checklist):
    if not msg.type.startswith("success"):
        return []
    host = config["run"]["cloud host"]
    race = [
        NextWorker("mysys.workers.run_NEMO", args=[host, "nowcast"], host=host),
        NextWorker("mysys.workers.run_ww3", args=[host, "nowcast"], host="arbutus.cloud"),
    ]
    return race, {"run_NEMO", "run_ww3"}


def after_run_NEMO(msg, config, checklist):
    if msg.type.startswith("success"):
        host = config["run"]["cloud host"]
        return [NextWorker("mysys.workers.watch_NEMO", args=[host, "nowcast"], host=host)]
    return []


def after_watch_NEMO(msg, config, checklist):
    run_type = msg.type.split()[-1]
    if not msg.type.startswith("success"):
        return []
    return [
        NextWorker("mysys.workers.download_results", args=["arbutus.cloud", run_type]),
        NextWorker("mysys.workers.make_fvcom_boundary", args=["arbutus.cloud"], host="arbutus.cloud"),
    ]


def after_make_fvcom_boundary(msg, config, checklist):
    if msg.type == "success":
        return [NextWorker("mysys.workers.run_fvcom", args=["arbutus.cloud"], host="arbutus.cloud")]
    return []


def after_run_fvcom(msg, config, checklist):
    if msg.type == "success":
        return [NextWorker("mysys.workers.watch_fvcom", args=["arbutus.cloud"], host="arbutus.cloud")]
    return []


def after_watch_fvcom(msg, config, checklist):
    if msg.type == "success":
        return [NextWorker("mysys.workers.download_fvcom_results", args=["arbutus.cloud"])]
    return []


def after_run_ww3(msg, config, checklist):
    if msg.type.startswith("success"):
        return [NextWorker("mysys.workers.watch_ww3", args=["arbutus.cloud"], host="arbutus.cloud")]
    return []


def after_watch_ww3(msg, config, checklist):
    if msg.type.startswith("success"):
        return [NextWorker("mysys.workers.download_wwatch3_results", args=["arbutus.cloud"])]
    return []


def after_download_results(msg, config, checklist):
    if not msg.type.startswith("success"):
        return []
    run_type = msg.type.split()[-1]
    plots = [
        NextWorker("mysys.workers.make_plots", args=[run_type, "research"]),
        NextWorker("mysys.workers.make_plots", args=[run_type, "publish"]),
    ]
    if run_type == "nowcast":
        plots.append(NextWorker("mysys.workers.split_results", args=[run_type]))
    return plots, {"make_plots"}


def after_download_fvcom_results(msg, config, checklist):
    return []


def after_download_wwatch3_results(msg, config, checklist):
    return [NextWorker("mysys.workers.update_forecast_datasets", args=["wwatch3", "forecast"])]


def after_split_results(msg, config, checklist):
    return []


def after_make_plots(msg, config, checklist):
    if msg.type.startswith("success"):
        return [
            NextWorker("mysys.workers.make_surface_current_tiles"),
            NextWorker("mysys.workers.make_feeds", args=["forecast"]),
        ]
    return []


def after_make_surface_current_tiles(msg, config, checklist):
    return []


def after_make_feeds(msg, config, checklist):
    return [NextWorker("mysys.workers.ping_erddap", args=["nowcast-green"])]


def after_ping_erddap(msg, config, checklist):
    return [NextWorker("mysys.workers.archive_tarball", args=["nowcast"], host="localhost")]


def after_update_forecast_datasets(msg, config, checklist):
    return []


def after_archive_tarball(msg, config, checklist):
    return [NextWorker("mysys.workers.checklist_report")]


def after_launch_remote_worker(msg, config, checklist):
    return []


def after_run_NEMO_hindcast(msg, config, checklist):
    if msg.type == "success":
        return [NextWorker("mysys.workers.watch_NEMO_hindcast", args=["optimum"], host="optimum")]
    return []


def after_watch_NEMO_hindcast(msg, config, checklist):
    if msg.type == "success":
        return [NextWorker("mysys.workers.run_NEMO_hindcast", args=["optimum"], host="optimum")]
    return []


def after_checklist_report(msg, config, checklist):
    return [NextWorker("nowcast.workers.clear_checklist")]


def after_clear_checklist(msg, config, checklist):
    return [NextWorker("nowcast.workers.rotate_logs")]


def after_rotate_logs(msg, config, checklist):
    return []
'''


def _types(name: str) -> list[str]:
    types = []
    for t in WORKERS[name]:
        if "{run}" in t:
            types += [t.format(run=run) for run in RUN_TYPES]
        else:
            types.append(t)
    return [*types, "crash"]


def write(directory: Path, ports: dict | None = None) -> Path:
    """Write the system into ``directory``; return its config file."""
    package = directory / "mysys"
    (package / "workers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "workers" / "__init__.py").write_text("")
    (package / "next_workers.py").write_text(NEXT_WORKERS.lstrip())
    for name in WORKERS:
        if name in ("clear_checklist", "rotate_logs"):
            continue  # nowcast's own
        if name in COMPUTED:
            success = 'return f"success {parsed_args.run_type}"'
            failure = 'return f"failure {parsed_args.run_type}"'
        else:
            success, failure = 'return "success"', 'return "failure"'
        body = "pass"
        if name == "checklist_report":
            body = 'tell_manager("need", "NEMO run")'
        code = WORKER.format(
            doc=f"The {name} worker.", name=name, success=success, failure=failure, body=body
        )
        (package / "workers" / f"{name}.py").write_text(code.lstrip())
    registry = {}
    for name in WORKERS:
        entry = {"checklist key": name.replace("_", " ")}
        for t in _types(name):
            entry[t] = f"{name}: {t}"
        registry[name] = entry
    registry["run_NEMO"].update({"timeout": 14400, "retries": 1, "retry delay": [300]})
    registry["download_weather"].update(
        {"retries": 3, "retry delay": [60, 300, 900], "timeout grace": 30}
    )
    ports = ports or {"manager": 5554, "workers": 5555}
    config = {
        "checklist file": "$(NOWCAST.ENV.NOWCAST_LOGS)/nowcast_checklist.yaml",
        "python": "$(NOWCAST.ENV.NOWCAST_ENV)/bin/python",
        "file group": "sallen",
        "config_path": "/results/nowcast-sys/config",
        "weather": {
            "download": {
                "url template": "https://dd.weather.gc.ca/{forecast}/{hour}",
                "forecast hours": ["00", "06", "12", "18"],
            },
        },
        "rivers": {"stations": {"Fraser": "08MF005", "Englishman": "08HB002"}},
        "run types": {
            rt: {"config name": f"SalishSeaCast_{rt}", "duration": 1} for rt in RUN_TYPES
        },
        "logging": {
            "publisher": {
                "version": 1,
                "formatters": {
                    "simple": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s"}
                },
                "handlers": {
                    "console": {
                        "class": "logging.StreamHandler",
                        "formatter": "simple",
                        "stream": "ext://sys.stdout",
                    }
                },
                "root": {"level": "DEBUG", "handlers": ["console"]},
            },
            "version": 1,
            "handlers": [],
        },
        "zmq": {
            "host": "localhost",
            "ports": {
                **ports,
                "logging": {
                    "message_broker": ports["workers"] + 10,
                    "manager": ports["workers"] + 11,
                    "workers": [
                        ports["workers"] + 12,
                        ports["workers"] + 13,
                        ports["workers"] + 14,
                    ],
                    "run_NEMO": [ports["workers"] + 15],
                },
            },
            "reply timeout": 10,
            "give up after": 600,
        },
        "message registry": {
            "manager": {
                "ack": "message acknowledged",
                "checklist cleared": "system checklist cleared",
            },
            "next workers module": "mysys.next_workers",
            "workers": registry,
        },
        "run": {
            "cloud host": "arbutus.cloud",
            "hindcast hosts": {"optimum": {"queue": "slow"}},
            "enabled hosts": {
                "arbutus.cloud": {
                    "python": "/nemoShare/MEOPAR/nowcast-sys/nowcast-env/bin/python",
                    "config file": "/nemoShare/MEOPAR/nowcast-sys/config/nowcast.yaml",
                    "envvars": "/nemoShare/MEOPAR/nowcast-sys/nowcast.envvars",
                    "run types": {
                        "nowcast": "/nemoShare/runs/nowcast",
                        "forecast": "/nemoShare/runs/forecast",
                    },
                    "forcing": {
                        "rivers dir": "/nemoShare/rivers",
                        "weather dir": "/nemoShare/GEM2.5",
                    },
                    "mpi hosts file": "${HOME}/mpi_hosts",
                    "ssh options": ["-o", "ConnectTimeout=20"],
                },
                "optimum": {
                    "ssh host": "optimum.eoas.ubc.ca",
                    "user": "sallen",
                    "port": 2222,
                    "run types": {},
                    "queue info": {"queue name": "slow", "email": "ops@example.org"},
                },
            },
        },
        "scheduler": {"timezone": "America/Vancouver"},
        "scheduled workers": [
            {
                "mysys.workers.collect_weather": {
                    "every": "day",
                    "at": "03:15",
                    "cmd line opts": "00 2.5km",
                }
            },
            {
                "mysys.workers.collect_NeahBay_ssh": {
                    "every": "day",
                    "at": "01:10",
                    "cmd line opts": "00",
                }
            },
            {"mysys.workers.download_weather": {"cron": "45 4,10,16 * * *", "catch up": True}},
            {
                "mysys.workers.collect_weather": {
                    "every": "sunday",
                    "at": "09:15:30",
                    "cmd line opts": "06 2.5km",
                }
            },
        ],
    }
    config_file = directory / "nowcast.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_file
