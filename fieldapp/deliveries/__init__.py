"""Deliveries: a courier's day from vehicle check to cash handover, and the dispatcher's side."""
