"""Realtime: framing, flow control, connections, the hub, and the stored document."""
