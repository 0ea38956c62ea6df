"""``python -m nowcast.web config.yaml``: serve the dashboard."""

from nowcast.web.server import main

main()
