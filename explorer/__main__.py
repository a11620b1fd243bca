"""``python -m explorer``: the command-line interface."""

from explorer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
