"""matcher: turns received messages into linked conversations and answers queries about them."""
