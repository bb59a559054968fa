"""Channel-neutral conversation handlers: an incoming message in, replies out."""
