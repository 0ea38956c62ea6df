"""The web dashboard: ``python -m nowcast.web config.yaml`` (needs ``nowcast[web]``).

Nothing is imported here, so that no other process pays for the dashboard's
libraries.
"""
