"""``python -m universal_mfp.training CONFIG.yaml`` (what ``torchrun -m`` launches)."""

import sys

from universal_mfp.training.cli import main

sys.exit(main())
