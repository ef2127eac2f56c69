"""Automation: the monthly schedule, the new-data sensor and the downstream rematerialisation policy."""
