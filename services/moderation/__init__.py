"""Warden moderation service."""
