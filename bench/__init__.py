"""`make bench`: Warden measured against the practical limit of the machine it runs on (docs/performance.md)."""
