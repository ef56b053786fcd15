"""Stores: where documents, passages and their vectors live, behind one interface."""
