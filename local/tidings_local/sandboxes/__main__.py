"""`python -m tidings_local.sandboxes ...` is `tidings sandbox ...`."""

import sys

from tidings_local.cli import main

sys.exit(main(["sandbox", *sys.argv[1:]]))
