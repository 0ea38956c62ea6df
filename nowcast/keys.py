"""Make CurveZMQ keys for a nowcast system: ``python -m nowcast.keys DIR``.

Creates in DIR the broker's key pair (``broker.key``, ``broker.key_secret``), one
client key pair (``client.key``, ``client.key_secret``) and ``authorized/`` holding
the public keys of the clients the broker lets in. ``--client NAME`` adds the key
pair ``NAME.key``/``NAME.key_secret`` (for another host) and authorizes it.
Secret key files are readable by their owner only.

Point the config at DIR with ``zmq: curve keys: DIR``; a host whose processes use
another client key names it with ``zmq: curve client: NAME``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def make_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """Create ``name.key`` and ``name.key_secret`` in ``directory``; refuse to
    overwrite existing keys."""
    import zmq.auth

    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    if public.exists() or secret.exists():
        raise FileExistsError(
            f"keys for {name!r} already exist in {directory}; not overwriting them"
        )
    old_umask = os.umask(0o077)
    try:
        zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(old_umask)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    return public, secret


def authorize(directory: Path, public: Path) -> Path:
    """Copy a client's public key into ``directory/authorized``."""
    authorized = directory / "authorized"
    authorized.mkdir(mode=0o755, exist_ok=True)
    target = authorized / public.name
    shutil.copyfile(public, target)
    os.chmod(target, 0o644)
    return target


def main(argv: list[str] | None = None) -> None:
    from nowcast.cli import command_parser

    parser = command_parser("keys", __doc__)
    parser.add_argument("directory", type=Path, help="Directory to hold the keys.")
    parser.add_argument(
        "--client",
        metavar="NAME",
        help="Add and authorize a client key pair NAME (e.g. a host name).",
    )
    args = parser.parse_args(argv)
    directory = args.directory
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if args.client:
            public, secret = make_pair(directory, args.client)
            authorize(directory, public)
            made = [public, secret]
        else:
            made = [*make_pair(directory, "broker"), *make_pair(directory, "client")]
            authorize(directory, made[2])
    except (OSError, ValueError) as e:
        print(f"nowcast.keys: {e}", file=sys.stderr)
        sys.exit(1)
    for path in made:
        print(f"wrote {path}")
    print(
        f"authorized clients: {', '.join(sorted(p.stem for p in (directory / 'authorized').glob('*.key')))}"
    )


if __name__ == "__main__":
    main()
