"""Channel kinds: Standard Webhooks and Apprise, registered by name in ``registry``."""
