"""Support code shared by the tests: servers on free ports, registries, consoles, MQTT watchers."""
