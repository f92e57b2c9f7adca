"""Packages: size, weight and tag per package, on MongoDB."""
