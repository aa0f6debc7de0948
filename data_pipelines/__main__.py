"""``python -m data_pipelines``: the data pipeline command line."""

from data_pipelines.cli import main

raise SystemExit(main())
