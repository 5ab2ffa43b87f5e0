"""Placeholder: the demo generator's commands are added by the demo work."""


def register(app) -> None:
    return None
