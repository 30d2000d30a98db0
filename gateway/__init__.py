"""The HTTP/WebSocket gateway: the only process that speaks HTTP to the outside."""
