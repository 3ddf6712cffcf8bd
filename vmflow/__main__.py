"""`python -m vmflow`: the same as the `vmflow` command."""

from vmflow.cli import main

main()
