"""sigwatch: a self-hosted signal monitor for crypto launches, listings and airdrops."""

__version__ = "0.1.0"
