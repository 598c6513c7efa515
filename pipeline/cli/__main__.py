"""`python -m pipeline.cli`: the `dealwatch` command."""

from pipeline.cli import main

main()
