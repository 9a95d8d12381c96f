"""``python -m unmixgen``: the `unmixgen` command, for environments where its script is not on
the PATH (a notebook's kernel, a venv not activated)."""

from .cli import main

if __name__ == "__main__":
    main()
