"""`python -m service` is the `psa-ledger` console script."""

from service.shell.cli import main

main()
