"""``python -m universal_mfp_pipelines``: the data pipeline command line."""

from universal_mfp_pipelines.cli import main

raise SystemExit(main())
