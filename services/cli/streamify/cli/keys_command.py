"""`streamify keys`: a new token key set (streamify.core.token_keys), for deployments that do not
use `streamify k8s-secrets`.

Prints shell assignments: STREAMIFY_TRUSTED_KEYS (the public keys) for every server, and one
STREAMIFY_SIGNING_KEYS per identity, each for the one process that signs as it (and the users
and operator keys for whoever issues tokens; no server needs those).
"""

from __future__ import annotations

import argparse
import shlex

from streamify.core import token_keys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: every run makes a new, random set


def run(args: argparse.Namespace) -> int:
    del args
    keys = token_keys.generate()
    print("# every server (Metadata, Upload, Transcode): the public keys")
    print(f"STREAMIFY_TRUSTED_KEYS={shlex.quote(token_keys.format_keys(keys, public=True))}")
    for identity, key in keys.items():
        holder = {
            token_keys.USERS: "whoever issues user tokens (`streamify token --user`)",
            token_keys.OPERATOR: "the operator only (`streamify token --service operator`)",
        }.get(identity, f"the {identity} process only")
        own = token_keys.format_keys({identity: key}, public=False)
        print(f"# {holder}")
        print(f"STREAMIFY_SIGNING_KEYS={shlex.quote(own)}")
    return 0
