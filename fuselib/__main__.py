"""``python -m fuselib`` is the ``fuselib`` command (also under ``torchrun -m fuselib``)."""
import sys

from .cli import main

sys.exit(main())
