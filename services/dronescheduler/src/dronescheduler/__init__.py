"""Drone fleet and assignments, on MongoDB."""
