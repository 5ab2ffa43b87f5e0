"""The REST API: the application (app.py), request dependencies (deps.py), shared schemas."""
