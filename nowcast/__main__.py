"""``python -m nowcast``: say what the commands are."""

print(
    "nowcast commands:\n"
    "  python -m nowcast.message_broker config.yaml\n"
    "  python -m nowcast.manager config.yaml [--ignore-checklist]\n"
    "  python -m nowcast.workers.sleep config.yaml [--sleep-time SECONDS]\n"
    "  python -m nowcast.workers.awaken config.yaml\n"
    "  python -m nowcast.workers.clear_checklist config.yaml\n"
    "  python -m nowcast.workers.rotate_logs config.yaml"
)
