"""Disclosure's own metrics, refreshed from its tables (exact across restarts and replicas)."""
from prometheus_client import Gauge, Histogram

PACKAGES_ISSUED = Gauge("warden_disclosure_packages_issued", "Disclosure packages issued, all time")
NO_DATA = Gauge("warden_disclosure_no_data", "Approved cases closed with no_data, all time")
HOLDS_ACTIVE = Gauge("warden_disclosure_holds_active", "Preservation holds in force now")
NOTICES_PENDING = Gauge("warden_disclosure_notices_pending", "User notices scheduled and not yet due")
SESSIONS_PURGED = Gauge("warden_disclosure_sessions_purged_last_run", "Sessions purged by the last retention run")
APPROVED_TO_DISCLOSED = Histogram(
    "warden_disclosure_approved_to_disclosed_seconds", "From legal review's approval to the package issued",
    buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 86400))
