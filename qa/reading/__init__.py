"""Reading: the span model that marks an answer inside retrieved passages."""
