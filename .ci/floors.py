"""Print pip pins at the floors pyproject.toml claims for the libraries the code leans on most.

``make test-oldest`` installs these, so the floors are tested, not assumed.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

LIBRARIES = ("celery", "kombu", "redis")

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
requirements = [
    *project["project"]["dependencies"],
    *(r for extra in project["project"]["optional-dependencies"].values() for r in extra),
]
pins = {}
for requirement in requirements:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*>=\s*([0-9.]+)", requirement.strip())
    if match and match.group(1).lower() in LIBRARIES:
        pins[match.group(1).lower()] = f"{match.group(1).lower()}=={match.group(2)}"
missing = [name for name in LIBRARIES if name not in pins]
if missing:
    raise SystemExit(f"pyproject.toml claims no floor for {', '.join(missing)}")
print(" ".join(pins[name] for name in LIBRARIES))
