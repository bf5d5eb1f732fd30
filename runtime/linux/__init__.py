"""The kernel behind a narrow seam: the only package that uses ctypes.

``syscalls.Syscalls`` is the seam (``testing.FakeSyscalls`` its double); ``capabilities``,
``seccomp``, ``mounts``, ``rootfs`` and ``proc`` decide in pure functions and act through it;
``poll`` waits for readable descriptors (no ctypes).
"""
