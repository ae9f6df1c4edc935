"""Thin blueprints, one module per API family: parse, call one service, render."""
