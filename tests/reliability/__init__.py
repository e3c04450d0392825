"""Fault campaigns: the real server, real sockets, and faults injected while phones sync."""
