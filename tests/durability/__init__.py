"""Crash tests: broker processes killed with SIGKILL must not lose what they confirmed."""
