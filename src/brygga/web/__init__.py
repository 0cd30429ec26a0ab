"""The web front door: FastAPI app factory (``app.create_app``), one router per area."""
