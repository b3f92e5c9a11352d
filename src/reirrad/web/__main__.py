"""``python -m reirrad.web COMMAND``: Django's management commands with reirrad's settings."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reirrad.web.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line([f"{sys.executable} -m reirrad.web", *sys.argv[1:]])


if __name__ == "__main__":
    main()
