"""Moderation's own metrics (the shared consumer/outbox metrics come from warden.runtime.metrics)."""
from prometheus_client import Counter, Gauge, Histogram

REPORTS = Counter("warden_moderation_reports_total", "Reports received, by reason and what came of them",
                  ["reason", "outcome"])  # outcome: counted | duplicate | suspended_reporter | pending | removed_content
DELISTINGS = Counter("warden_moderation_delistings_total", "Content delisted, by ground and automation",
                     ["ground", "automated_decision"])
RELISTINGS = Counter("warden_moderation_relistings_total", "Content relisted, by cause", ["cause"])
TIME_TO_DELIST = Histogram("warden_moderation_time_to_delist_seconds", "First report to delisting",
                           buckets=(1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400))
QUEUE_DEPTH = Gauge("warden_moderation_queue_depth", "Items waiting for a moderator")
SUSPENDED_REPORTERS = Gauge("warden_moderation_suspended_reporters", "Reporters whose notices are suspended")
MISUSE_ACTIONS = Counter("warden_moderation_misuse_actions_total", "DSA Art. 23 actions", ["step"])
APPEALS = Counter("warden_moderation_appeals_total", "Appeals, by outcome", ["outcome"])
RECHECKED = Counter("warden_moderation_rechecked_total",
                    "Public content checked again because the banks or the model changed")
RECHECK_PENDING = Gauge("warden_moderation_recheck_pending",
                        "Public content not yet checked with the current banks and model")
