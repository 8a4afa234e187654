"""Composition root: settings, the container, the application factory and the CLI."""
