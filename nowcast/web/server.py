"""The dashboard process: ``python -m nowcast.web config.yaml``.

Serves the dashboard with uvicorn on ``web: bind`` (default 127.0.0.1) and
``web: port``. It needs the ``web`` extra (``pip install 'nowcast[web]'``); no
other nowcast process imports any of it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from nowcast.config import Config
from nowcast.errors import ConfigError

logger = logging.getLogger("web")


def load(config_file: str) -> tuple[Config, object]:
    """The config and its checked ``web`` section; ``ConfigError`` if either is wrong."""
    from nowcast.web.settings import read_settings

    config = Config()
    try:
        config.load(config_file)
    except OSError as e:
        raise ConfigError(f"cannot read config file {config_file}: {e.strerror}") from None
    except KeyError as e:
        raise ConfigError(e.args[0]) from None
    return config, read_settings(config)


def main(argv: list[str] | None = None) -> None:
    from nowcast import logs
    from nowcast.cli import CommandLineInterface

    cli = CommandLineInterface("web", package="nowcast", description=__doc__)
    cli.build_parser()
    cli.add_argument("--url", action="store_true", help="Print the dashboard's address and exit.")
    args = cli.parser.parse_args(argv)
    try:
        config, settings = load(args.config_file)
        logs.configure(config)
    except ConfigError as e:
        logs.console_only()
        logger.critical("cannot start: %s", e)
        sys.exit(2)
    if args.url:
        print(settings.url)
        return
    try:
        import uvicorn

        from nowcast.web.app import create_app
    except ImportError as e:
        logger.critical(
            "cannot start: %s; the dashboard needs the web extra: pip install 'nowcast[web]'", e
        )
        sys.exit(2)
    app = create_app(config, settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.bind,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
    )
    logger.info("running in process %s", os.getpid())
    logger.info(
        "dashboard for %s at %s%s",
        config.file,
        settings.url,
        " (password required)" if settings.password else "",
    )
    stopped: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        # uvicorn handles these while it serves, then raises them again once it has
        # stopped; this handler (only a flag) makes that a normal exit
        signal.signal(signum, lambda signum, frame: stopped.append(signum))
    server.run()
    logger.info("dashboard stopped")
    sys.exit(0 if server.started else 1)


if __name__ == "__main__":
    main()
