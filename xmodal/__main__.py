"""``python -m xmodal ...``: the same as the ``xmodal`` command."""

import sys

from xmodal.cli.main import main

sys.exit(main())
