"""``python -m pdfsg``: the same as the ``pdfsg`` command."""

import sys

from pdfsg.cli import main

sys.exit(main())
