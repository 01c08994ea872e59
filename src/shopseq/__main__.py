"""`python -m shopseq`."""

from shopseq.cli import main

main()
