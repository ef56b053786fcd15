"""`python -m qa` is the `qa` command."""
from qa.cli import run

run()
