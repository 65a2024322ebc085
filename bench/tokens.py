"""Bearer token cost: Streamify's EdDSA tokens against the HS256 tokens they replaced.

    .venv/bin/python bench/tokens.py [--runs N]

Prints µs per mint and per verify (the full check a server makes of a token it has not seen:
header, signature, claims), and per call through TokenVerifier, which remembers a verified
token until it expires (what a client reusing its token pays).
"""

from __future__ import annotations

import argparse
import time
import timeit

import jwt
from common import log

from streamify.core import token_keys
from streamify.core.auth import TokenVerifier, mint_token, verify_token

HMAC_KEY = b"k" * 48


def _us(fn, runs: int) -> float:
    return min(timeit.repeat(fn, number=runs, repeat=5)) / runs * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=2000)
    runs = p.parse_args().runs
    keys = token_keys.generate((token_keys.USERS,))
    trusted = {i: k.public for i, k in keys.items()}
    token = mint_token(keys[token_keys.USERS], "alice")
    now = int(time.time())
    claims = {"sub": "alice", "kind": "user", "iss": "streamify", "iat": now, "exp": now + 3600}
    hs = jwt.encode(claims, HMAC_KEY, algorithm="HS256")
    verifier = TokenVerifier(trusted, "streamify")
    header = f"Bearer {token}"
    rows = [
        (
            "mint",
            _us(lambda: mint_token(keys[token_keys.USERS], "alice"), runs),
            _us(lambda: jwt.encode(claims, HMAC_KEY, algorithm="HS256"), runs),
        ),
        (
            "verify (uncached)",
            _us(lambda: verify_token(trusted, token), runs),
            _us(lambda: jwt.decode(hs, HMAC_KEY, algorithms=["HS256"], issuer="streamify"), runs),
        ),
    ]
    log(f"{'µs per call':<22}{'EdDSA (Streamify)':>20}{'HS256':>10}{'ratio':>8}")
    for name, ours, theirs in rows:
        log(f"{name:<22}{ours:>20.1f}{theirs:>10.1f}{ours / theirs:>7.2f}x")
    log(f"{'verify (cached)':<22}{_us(lambda: verifier(header), runs):>20.2f}")


if __name__ == "__main__":
    main()
