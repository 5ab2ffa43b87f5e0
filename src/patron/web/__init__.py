"""Web UI: server-rendered pages (app.py mounts them), their templates, static assets and session."""
