"""Embedding: the sentence-transformers model that turns passages and questions into vectors."""
