"""``python -m vitlens …`` (and ``torchrun … -m vitlens train …``) runs the command line."""

from vitlens.cli import main

main()
