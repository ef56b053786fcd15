"""Training and calibrating the span model (scripts; not part of the installed package)."""
