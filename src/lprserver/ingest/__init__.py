"""Edge ingest: one pipeline behind three doors (Socket.IO, raw WebSocket, HTTP)."""
