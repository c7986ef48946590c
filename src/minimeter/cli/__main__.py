"""``python -m minimeter.cli`` runs the command line."""

from minimeter.cli import main

if __name__ == "__main__":
    main()
