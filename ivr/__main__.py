"""`python -m ivr` is the `ivr` command."""

from .cli import main

main()
