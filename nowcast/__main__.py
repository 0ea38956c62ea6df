"""``python -m nowcast``: say what the commands are."""

print(
    "nowcast commands (each takes the system's config file):\n"
    "  python -m nowcast.message_broker config.yaml\n"
    "  python -m nowcast.manager config.yaml [--ignore-checklist]\n"
    "  python -m nowcast.scheduler config.yaml [--list]\n"
    "  python -m nowcast.log_aggregator config.yaml\n"
    "  python -m nowcast.status config.yaml [--json]      (also: nowcast-status)\n"
    "  python -m nowcast.keys DIR [--client NAME]          (also: nowcast-keys)\n"
    "built-in workers:\n"
    "  python -m nowcast.workers.sleep config.yaml [--sleep-time SECONDS]\n"
    "  python -m nowcast.workers.awaken config.yaml\n"
    "  python -m nowcast.workers.clear_checklist config.yaml\n"
    "  python -m nowcast.workers.rotate_logs config.yaml"
)
