#!/usr/bin/env python
"""Django's command-line utility for Timbre."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# platform/ holds the Django project and platform apps. It is put on sys.path as a directory
# rather than made a package: a package named `platform` would shadow the standard library.
sys.path.insert(0, str(ROOT / "platform"))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
