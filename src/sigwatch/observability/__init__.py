"""Logging, metrics and health: the foundations every stage may use."""
