"""Ingestion: review files → documents → passages, and the indexer that writes them to a store."""
