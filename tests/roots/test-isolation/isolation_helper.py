"""A module of the docs folder that the examples import and mutate."""

VALUE = "original"
ITEMS = ["original"]
