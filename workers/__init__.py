"""The example nowcast system: a small daily cycle that needs no network.

prepare_run -> get_weather + get_rivers (a race-condition group) -> run_model
-> make_plots -> clear_checklist -> rotate_logs. ``next_workers.py`` decides
what follows what; it is the file to edit to change the cycle.
"""
