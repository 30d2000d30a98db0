"""Interoperability with real JavaScript Yjs clients (yjs + y-websocket from npm, driven by Node)."""
