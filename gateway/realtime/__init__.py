"""Realtime: the events and document WebSockets, fanned out across gateways through Redis."""
