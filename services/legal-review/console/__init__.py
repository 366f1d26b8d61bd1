"""The reviewers' console (routes.py, templates/): web pages over the review functions the API uses."""
