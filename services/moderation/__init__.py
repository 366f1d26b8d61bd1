"""Moderation: scores user reports per content item, delists from search, queues for humans, takes appeals."""
