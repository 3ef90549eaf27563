"""Test support: a y-websocket client in Python, server processes, Postgres databases."""
