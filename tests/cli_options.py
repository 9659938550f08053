"""For the deployment files' tests: does a command line written in a compose file or a systemd unit
parse with the installed tool, using only options it has?"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

BIN = Path(sys.executable).parent


def check_parses(argv: list[str], where: str) -> None:
    """`argv`'s command words with --help exit 0, and every option `argv` uses is in that help.
    The tool is the virtualenv's when it has one of that name (ticklake, dagster), else the PATH's."""
    options = {word.split("=")[0] for word in argv[1:] if word.startswith("-")}
    first_option = next((i for i, word in enumerate(argv) if word.startswith("-")), len(argv))
    tool = BIN / Path(argv[0]).name
    command = [str(tool) if tool.exists() else argv[0], *argv[1:first_option]]
    returncode, helptext = _help(tuple(command))
    assert returncode == 0, f"{where}: {' '.join(command)} --help: {helptext[-500:]}"
    for option in options:
        assert re.search(rf"(^|[\s,\[]){re.escape(option)}\b", helptext), f"{where}: {option} unknown to {command}"


@cache
def _help(command: tuple[str, ...]) -> tuple[int, str]:
    """A command's --help, once per test session (each ticklake start costs a second of imports)."""
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, check=False,
                            env={"COLUMNS": "250", "PATH": f"{BIN}:/usr/bin:/bin"})
    return result.returncode, result.stdout + result.stderr
