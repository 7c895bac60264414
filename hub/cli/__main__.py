"""``python -m nrhub.cli``: the ``nrhub`` command without its console script."""

from nrhub.cli.main import main

raise SystemExit(main())
