"""Warden legal-review service."""
