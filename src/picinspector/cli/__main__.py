"""``python -m picinspector.cli``."""

from . import main

main()
