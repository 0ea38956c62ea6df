"""``python -m nowcast``: the ``nowcast`` command (``nowcast/command.py``)."""

from nowcast.command import main

main()
