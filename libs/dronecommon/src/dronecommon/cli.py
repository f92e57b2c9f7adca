"""``python -m <service>``: one entry point for every service, with a ``--help`` made from its
settings class.

:func:`service_main` parses the command line (``-h``/``--help`` prints what the service does,
every environment variable it reads with its default, and where its API docs are, then exits 0
without starting anything), loads the settings (a bad one exits 2 naming the variable) and serves
the app factory under uvicorn. :func:`environment_help` is the generated variable list, also
usable in other commands' help.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic_core import to_jsonable_python

from dronecommon.apidocs import DOCS_URL, REDOC_URL
from dronecommon.server import serve
from dronecommon.settings import ServiceSettings, SettingsError, env_name, load_settings

# A default longer than this is summarised (a JSON list of drone bases, say).
_MAX_SHOWN = 60


@dataclass(frozen=True)
class EnvVar:
    """One environment variable a settings class reads."""

    name: str
    default: str
    choices: tuple[str, ...] = ()
    section: str = ""
    description: str = ""


def _show(value: Any, owner: str) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "(set)" if value.get_secret_value() else "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, int | float):
        return str(value)
    shown = json.dumps(to_jsonable_python(value), separators=(",", ":"))
    if len(shown) <= _MAX_SHOWN:
        return shown
    kind = f"a JSON list of {len(value)}" if isinstance(value, list) else "JSON"
    return f"({kind}: see {owner})"


def _choices(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(choice) for choice in get_args(annotation))
    return ()


def _walk(
    settings_cls: type[ServiceSettings], model: BaseModel, loc: tuple[str, ...], section: str
) -> Iterator[EnvVar]:
    nested: list[tuple[str, BaseModel]] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            nested.append((name, value))
            continue
        yield EnvVar(
            name=env_name(settings_cls, (*loc, name)),
            default=_show(value, settings_cls.__module__),
            choices=_choices(field.annotation),
            section=section,
            description=field.description or "",
        )
    # The service's own sections first, then the ones every service shares.
    shared = set(ServiceSettings.model_fields) if not loc else set()
    nested.sort(key=lambda item: item[0] in shared)
    for name, value in nested:
        yield from _walk(settings_cls, value, (*loc, name), ".".join((*loc, name)))


def environment_variables(
    settings_cls: type[ServiceSettings], sections: Sequence[str] | None = None
) -> list[EnvVar]:
    """Every variable ``settings_cls`` reads, with its default, top-level fields first.

    ``sections`` keeps only top-level fields (``""``) and the named sub-models (``"queue"``).
    Defaults are the class's own, not the current environment's, except where a field's
    description names the variable its default comes from; secrets show only whether set.
    """
    defaults = settings_cls.model_construct()
    found = list(_walk(settings_cls, defaults, (), ""))
    if sections is None:
        return found
    return [var for var in found if var.section.split(".")[0] in sections]


def environment_help(
    settings_cls: type[ServiceSettings], sections: Sequence[str] | None = None
) -> str:
    """The variables as help text: one per line (name, default, choices, note), grouped by
    sub-model under a ``[section]`` line."""
    found = environment_variables(settings_cls, sections)
    width = max((len(var.name) for var in found), default=0)
    lines: list[str] = []
    section: str | None = None
    for var in found:
        if var.section != section:
            section = var.section
            if section:
                lines.append(f"  [{section}]")
        note = f"  ({' | '.join(var.choices)})" if var.choices else ""
        if var.description:
            note += f"  {var.description}"
        lines.append(f"  {var.name.ljust(width)}  {var.default}{note}")
    return "\n".join(lines)


def service_help_epilog(settings_cls: type[ServiceSettings], *, readme: str) -> str:
    defaults = settings_cls.model_construct()
    base = f"http://{defaults.host}:{defaults.port}"
    return (
        "environment variables (default shown; nested ones use __, lists and objects are JSON):\n"
        f"{environment_help(settings_cls)}\n\n"
        "once it runs (at the default host and port):\n"
        f"  Swagger UI        {base}{DOCS_URL}\n"
        f"  ReDoc             {base}{REDOC_URL}\n"
        f"  OpenAPI document  {base}/openapi.json\n"
        f"  health            {base}/healthz (liveness), {base}/readyz (readiness)\n"
        f"more: {readme} in the repository"
    )


def service_main(
    settings_cls: type[ServiceSettings],
    factory: str,
    argv: Sequence[str] | None = None,
    *,
    description: str,
    readme: str,
) -> int:
    """Run a service: ``--help`` prints and exits 0 (``SystemExit``, from argparse); bad settings
    print and return 2; otherwise serve ``factory`` (``"package.main:create_app"``) until
    SIGTERM/SIGINT, then return 0."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {settings_cls.service_name}",
        description=description,
        epilog=service_help_epilog(settings_cls, readme=readme),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)  # -h/--help exits 0 here; an unknown argument exits 2
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        print(exc, file=sys.stderr)  # noqa: T201 - the operator's only feedback
        return 2
    serve(factory, settings)
    return 0
