"""Plumbing shared by every command and not about data, models or searches: results folders."""
