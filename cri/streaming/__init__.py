"""The CRI streaming endpoints (exec, attach, port-forward) and the transports they are served over."""
