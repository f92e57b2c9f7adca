"""Import boundaries: the shared library never imports a service (services depend on it, not the
other way), and no runtime code imports the test kit or a test tool (images do not ship them)."""

from __future__ import annotations

import ast
from pathlib import Path

from dronetesting.servers import project_root

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "dronecommon"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def service_packages() -> set[str]:
    return {
        package.name
        for package in project_root().glob("services/*/src/*")
        if package.is_dir() and (package / "__init__.py").exists()
    }


def test_the_library_imports_no_service() -> None:
    services = service_packages() | {"services"}
    offenders = {
        str(path.relative_to(LIBRARY)): sorted(imported_modules(path) & services)
        for path in LIBRARY.rglob("*.py")
        if imported_modules(path) & services
    }
    assert offenders == {}


# What only the workspace's development group installs.
TEST_ONLY = {"dronetesting", "pytest", "schemathesis", "hypothesis", "httpx"}


def runtime_sources() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py")) + sorted(project_root().glob("services/*/src/**/*.py"))


def test_no_runtime_code_imports_the_test_kit() -> None:
    root = project_root()
    offenders = {
        str(path.relative_to(root)): sorted(imported_modules(path) & TEST_ONLY)
        for path in runtime_sources()
        if imported_modules(path) & TEST_ONLY
    }
    assert offenders == {}
    services = {path.relative_to(root).parts[1] for path in runtime_sources()}
    assert {"ingestion", "delivery", "workflow", "simulator"} <= services  # the scan sees them


def test_the_scan_sees_imports() -> None:
    # Guard against a scan that finds nothing and so can never fail.
    assert {"fastapi", "opentelemetry"} <= imported_modules(LIBRARY / "app.py") | imported_modules(
        LIBRARY / "telemetry.py"
    )
    assert len(list(LIBRARY.rglob("*.py"))) > 5
