"""The export command of the command line."""

from __future__ import annotations

import argparse
from typing import Any


def add_export_command(sub: Any) -> None:
    export = sub.add_parser("export", help="export a cleaned preference dataset")
    export.add_argument("project", help="project slug or id")
    export.add_argument("--format", default="preference")
    export.add_argument("--out", required=True)
    export.set_defaults(func=_not_ready)


def _not_ready(args: argparse.Namespace) -> None:
    raise SystemExit("error: exports are not available in this version yet")
