"""Dispatch: the durable outbox, the signed webhook client and the reference ticket receiver."""
