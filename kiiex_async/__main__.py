"""``python -m kiiex_async`` runs the ``kiiex`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
