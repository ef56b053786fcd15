"""Retrieval: from a question to the passages most likely to hold its answer."""
