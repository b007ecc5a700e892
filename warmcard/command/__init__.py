"""The top of the house: the `warmcard` command, demo, provisioning, local server launchers.

It may import every package; nothing imports it but `warmcard/__main__.py`, tests and benches.
"""
