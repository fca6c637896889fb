"""``python -m polydiff`` (and ``torchrun -m polydiff train ...``)."""

from polydiff.cli.main import main

raise SystemExit(main())
