"""Bridges from eventclipd's ZeroMQ stream to the systems installations already run (MQTT)."""
