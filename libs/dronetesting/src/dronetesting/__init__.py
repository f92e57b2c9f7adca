"""The drone delivery test kit: real servers, app runners, tokens, checks and the native stack.

A development dependency only (the workspace's ``dev`` group): no service depends on it, so no
image ships it. Its pytest plugin (:mod:`dronetesting.plugin`) is registered by entry point.
"""
