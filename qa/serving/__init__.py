"""Serving: the HTTP API and the web chat."""
