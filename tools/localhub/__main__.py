"""``python -m localhub ...`` runs the CLI (tests start the hub this way as a subprocess)."""

from .cli.main import main

if __name__ == "__main__":
    main()
