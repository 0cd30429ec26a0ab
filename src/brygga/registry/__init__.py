"""Residents: identity, profile, preferences, consents, pause, withdrawal and deletion."""
