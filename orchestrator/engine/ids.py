"""Deterministic ids and stable choices: the same inputs always give the same outputs, on any machine."""

from __future__ import annotations

import base64
import hashlib

_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def action_id(journey: str, version: int, customer: str, run: int, step: str) -> str:
    text = f"{journey}\x1f{version}\x1f{customer}\x1f{run}\x1f{step}".encode()
    return hashlib.blake2b(text, digest_size=16, person=b"orch-action").hexdigest()


def coupon_code(action: str, secret: bytes) -> str:
    """`K7QM-3XDP-9W2A-HF4T`: keyed on a secret so codes cannot be guessed from public ids."""
    digest = hashlib.blake2b(action.encode(), key=secret[:64], digest_size=10, person=b"orch-coupon").digest()
    text = base64.b32encode(digest).decode().translate(_CROCKFORD)
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def unit_interval(*parts: str) -> float:
    """A stable number in [0, 1) from text: holdout and split assignment, never `random`."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8, person=b"orch-bucket").digest()
    return int.from_bytes(digest, "big") / 2**64


def basket_id(customer: str, event: str) -> str:
    """A purchase's basket id for the model: stable, and no personal data (the customer key is hashed)."""
    return hashlib.blake2b(f"{customer}\x1f{event}".encode(), digest_size=12, person=b"orch-basket").hexdigest()
