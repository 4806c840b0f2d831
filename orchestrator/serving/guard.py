"""What the API does against an attacker besides the token itself (serving/api.py checks it in constant time):
failed attempts throttled per client address, security headers on every answer, a dashboard session cookie that is
`Secure` behind TLS (a proxy's `X-Forwarded-Proto: https` included) and expires, and a bounded wait for a form body.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from aiohttp import web

FAILURES_ALLOWED = 30  # wrong tokens per client address within WINDOW seconds; then 429 until the oldest ages out
WINDOW = 60.0
TRACKED = 10_000  # client addresses remembered (the least recently failing are forgotten first)
SESSION_SECONDS = 8 * 3600  # the dashboard cookie's lifetime
BODY_SECONDS = 5.0  # a form body must arrive within this: a client sending less than its Content-Length is cut off
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class Throttle:
    """Failed authentications per client address in a sliding window: past `FAILURES_ALLOWED`, the address waits
    (answered 429 with `Retry-After`) whatever it presents, so a token cannot be guessed at network speed."""

    allowed: int = FAILURES_ALLOWED
    window: float = WINDOW
    failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, address: str, now: float) -> float | None:
        """Seconds the address must wait, or None when it may try."""
        times = self.failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self.failures[address]
            return None
        return times[0] + self.window - now if len(times) >= self.allowed else None

    def failed(self, address: str, now: float) -> None:
        times = self.failures.setdefault(address, deque())
        times.append(now)
        self.failures.move_to_end(address)
        while len(self.failures) > TRACKED:
            self.failures.popitem(last=False)


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def over_tls(request: web.Request) -> bool:
    """TLS here, or at the proxy in front (`X-Forwarded-Proto: https`): the cookie must then be `Secure`."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https"


def secured(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
