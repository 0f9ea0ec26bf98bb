"""The work behind each `coco-operator` subcommand, imported only when that subcommand runs (`cli.py`)."""
