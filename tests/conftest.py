"""For every suite: set before any test module imports grpc."""
import os

# The pod monitor's tests fork helpers the way a monitor does, with libc's fork and no
# interpreter hooks, from the test process, which in a full run has grpc loaded (the e2e suite's
# clients). grpc's own fork handlers would then restart its threads in each child and crash it.
# A real monitor never has grpc: the fork server is forked before the agent imports it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
