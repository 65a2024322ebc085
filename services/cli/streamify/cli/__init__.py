"""The `streamify` command and what only it uses: the local mesh of `streamify run` (mesh) and
the resumable upload client (upload). The top layer: it imports the services; nothing
imports it."""

from streamify.cli.commands import main

__all__ = ["main"]
