"""``python -m pdfsg.cli``: the same as the ``pdfsg`` command."""

import sys

from pdfsg.cli import main

sys.exit(main())
