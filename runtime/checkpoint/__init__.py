"""Checkpoint and restore of containers with CRIU (CRI CheckpointContainer, KEP-2008).

dump.py writes a checkpoint archive of a running container (archive.py: the layout CRI-O,
containerd and Podman share); restore.py turns an archive named as a container's image into a
container whose start restores it (restorer.py, in the pod monitor's starter) instead of exec'ing.
"""
