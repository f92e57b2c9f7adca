"""Test helpers: real servers, span capture and development tokens (a pytest plugin)."""
