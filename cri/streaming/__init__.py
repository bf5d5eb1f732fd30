"""The CRI streaming server: the URLs Exec, Attach and PortForward hand out, served over SPDY/3.1
and WebSocket with the Kubernetes remotecommand and portforward protocols."""
