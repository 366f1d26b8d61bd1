"""The moderators' console (routes.py, templates/): web pages over the moderation functions the API uses."""
