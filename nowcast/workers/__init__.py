"""Workers that come with nowcast: sleep, awaken, rotate_logs, clear_checklist."""
