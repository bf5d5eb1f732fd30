"""Lifecycle events of sandboxes and containers: what the runtime publishes (model.py) and the
fan-out to the CRI's GetContainerEvents streams (hub.py)."""
