"""`python -m ivr` is the `ivr` command."""

from ivr.cli.core import main

main()
