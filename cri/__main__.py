"""The `pycrid` command line."""
from __future__ import annotations

import argparse
import contextlib
import sys

from cri import logformat
from cri import socket as cri_socket
from cri.config import ConfigError, load
from cri.socket import SocketInUse
from runtime.errors import PycridError
from runtime.version import VERSION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pycrid", description="A CRI v1 node agent.")
    parser.add_argument("--version", action="version", version=f"pycrid {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the CRI on a unix socket")
    serve.add_argument("--config", metavar="FILE", help="TOML config (default: the embedded defaults)")
    images = commands.add_parser("images", help="manage the image store offline")
    image_commands = images.add_subparsers(dest="images_command", required=True)
    load_image = image_commands.add_parser(
        "import", help="load an OCI image layout or `docker save` tarball (air-gapped nodes)")
    load_image.add_argument("file", help="the tarball")
    load_image.add_argument("--config", metavar="FILE", help="TOML config (default: the embedded defaults)")
    args = parser.parse_args(argv)

    try:
        config = load(args.config)
    except ConfigError as e:
        print(f"pycrid: {e}", file=sys.stderr)
        return 2
    logformat.configure(config.log_level)
    try:
        forked = None
        if args.command == "serve":
            # Not beside a live pycrid (its fork server is the one at this path), then before the
            # agent's own imports (protobuf, HTTP/2, the services): see forkedstart.
            cri_socket.prepare(config.socket_path)
            from runtime.process.forkedstart import fork_server
            forked = fork_server(config.forkserver_socket, config.forkserver_log)
        from cri import app
        if args.command == "images":
            for image in app.import_images(config, args.file):
                print(f"imported {image.id} {' '.join(image.repo_tags)}")
        else:
            try:
                app.serve(config, forked)
            except BaseException:
                if forked is not None:  # ours alone so far: it goes once idle, as after a stop
                    with contextlib.suppress(PycridError):
                        forked.linger()
                raise
    except (SocketInUse, PycridError) as e:
        print(f"pycrid: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
