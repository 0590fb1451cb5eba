"""Helpers shared across the plugin (resume, distributed setup, option checks)."""
