"""`python -m streamify.cli ...` is the `streamify` command."""

import sys

from streamify.cli.commands import main

sys.exit(main())
