"""Intake: verifies authorities' signed requests, normalises them, and hands them to legal review."""
