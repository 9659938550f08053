"""`python -m ticklake`: the same CLI as the `ticklake` script (used by `ticklake run` for its children)."""

from ticklake.cli import main

main()
