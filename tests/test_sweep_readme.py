"""The README's sweep examples run one after another as written: each sweep of another
kind gets its own folder (a folder holds one sweep, another is refused), and each
`compare sweeps/...` line compares the sweep just before it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


def _commands(section: str) -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.startswith("gencompile ")]


def _folder(command: list[str]) -> str:
    if "--name" in command:
        return command[command.index("--name") + 1]
    spec = yaml.safe_load((ROOT / command[2]).read_text(encoding="utf-8"))
    return str(spec["name"])


def test_the_readme_sweeps_each_have_their_folder() -> None:
    commands = _commands(_section((ROOT / "README.md").read_text(encoding="utf-8"), "Sweeps"))
    sweeps = [command for command in commands if command[1] == "sweep"]
    kinds = {("--grid" in command, _folder(command)) for command in sweeps}
    folders = [folder for _, folder in kinds]
    assert len(sweeps) >= 2 and len(folders) == len(set(folders)), folders
    last = None
    for command in commands:
        if command[1] == "sweep":
            last = _folder(command)
        elif command[1] == "compare":
            assert command[2] == f"sweeps/{last}"
