"""Answering: the pipeline from a question (and a conversation) to ranked answers."""
