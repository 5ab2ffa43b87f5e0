"""Web UI: mounted by create_app (placeholder until the UI lands)."""


def mount_web(app, settings) -> None:
    return None
