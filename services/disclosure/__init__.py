"""Warden disclosure service."""
