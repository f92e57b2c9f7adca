"""The Lua scripts (``lua/*.lua``), with the shared functions each one calls prepended."""

from __future__ import annotations

from importlib.resources import files

from dronecommon.events import LUA_APPEND


def _read(name: str) -> str:
    return (files(__package__) / "lua" / name).read_text(encoding="utf-8")


def source(name: str) -> str:
    """The script ``lua/<name>`` with ``append_event`` (:mod:`dronecommon.events`) and
    ``add_stage`` (``lua/stages.lua``) defined before it."""
    return LUA_APPEND + _read("stages.lua") + _read(name)
