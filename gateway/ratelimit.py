"""Rate limits: fixed windows counted by the ``RateCounters`` port (Redis
``rate_limit:{identifier}``, ``persistence.stores.rate_limits``).

The identifier is ``{prefix}{scope}:{kind}:{value}``, e.g.
``auth:login:ip:127.0.0.1`` or ``auth:login:email:<sha256>``. A window starts
with its first request; every replica shares the counters.

Use as a dependency::

    @router.post("/x", dependencies=[Depends(rate_limit("x:create", key="principal",
                                                      rule="per_principal"))])

or call :func:`enforce` with an identifier known only after the body is read
(the login email). Over the limit: 429 problem details with ``Retry-After``
(the seconds left in the window). The decision itself is :func:`decide`, pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from config.settings import RateLimitSettings, RateRule
from gateway.deps import CurrentPrincipal, RateCountersDep, SettingsDep
from gateway.metrics import route_template
from gateway.ports import RateCounters
from gateway.problems import ProblemHTTPException, problem_type

KeyKind = Literal["ip", "principal"]

RATE_LIMITED = problem_type("rate-limited")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    #: Requests left in the window after this one (0 when refused).
    remaining: int
    #: Seconds until the window ends; what ``Retry-After`` says when refused.
    retry_after_s: int


def decide(count: int, ttl_s: int, rule: RateRule) -> Decision:
    """The verdict on the ``count``-th request of a window with ``ttl_s`` seconds left.

    ``ttl_s`` is Redis's answer to ``TTL``: -1 (no expiry, which ``EXPIRE NX``
    should make impossible) or -2 (key vanished) count as a whole window.
    Retry-After is at least 1 second, never more than the window.
    """
    retry = ttl_s if 0 < ttl_s <= rule.window_s else rule.window_s
    if count <= rule.limit:
        return Decision(True, rule.limit - count, retry)
    return Decision(False, 0, retry)


def identifier(prefix: str, scope: str, kind: str, value: str) -> str:
    """``{prefix}{scope}:{kind}:{value}``; long or free-form values are hashed
    so a caller cannot make huge keys or inject separators."""
    if len(value) > 64 or kind == "email":
        value = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}{scope}:{kind}:{value}"


async def hit(counters: RateCounters, key: str, rule: RateRule) -> Decision:
    """Count one request against ``key`` and decide. Not idempotent (it counts)."""
    count, ttl = await counters.hit(key, rule.window_s)
    return decide(count, ttl, rule)


def too_many(decision: Decision) -> ProblemHTTPException:
    return ProblemHTTPException(
        429,
        detail="Too many requests; retry after the time given in Retry-After.",
        type_=RATE_LIMITED,
        headers={"Retry-After": str(decision.retry_after_s)},
    )


async def enforce(
    counters: RateCounters,
    settings: RateLimitSettings,
    *,
    scope: str,
    kind: str,
    value: str,
    rule: RateRule,
) -> Decision:
    """Count one request of ``(scope, kind, value)``; raise the 429 when over ``rule``."""
    if not settings.enabled:
        return Decision(True, rule.limit, rule.window_s)
    key = identifier(settings.key_prefix, scope, kind, value)
    decision = await hit(counters, key, rule)
    if not decision.allowed:
        raise too_many(decision)
    return decision


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or what a trusted proxy forwarded.

    Forwarded headers are never read here: the server takes them only from
    ``settings.security.trusted_proxies`` (``gateway.app.server_options``;
    none by default), so a spoofed ``X-Forwarded-For`` cannot choose a bucket."""
    return request.client.host if request.client else "unknown"


def rule_named(settings: RateLimitSettings, rule: RateRule | str) -> RateRule:
    """``rule`` itself, or the rule of that name in ``settings``."""
    if isinstance(rule, RateRule):
        return rule
    found = getattr(settings, rule, None)
    if not isinstance(found, RateRule):
        raise ValueError(f"settings.rate_limit has no rule {rule!r}")
    return found


def _scope_of(request: Request, scope: str, per_route: bool) -> str:
    if not per_route:
        return scope
    return f"{scope}:{request.method}:{route_template(request.scope)}"


def rate_limit(
    scope: str,
    *,
    key: KeyKind = "ip",
    rule: RateRule | str | None = None,
    limit: int | None = None,
    window_s: int | None = None,
    per_route: bool = False,
) -> Callable[..., Awaitable[None]]:
    """A dependency: ``Depends(rate_limit("auth:login", key="ip", rule="login_per_ip"))``.

    ``rule`` is a :class:`RateRule` or the name of one in ``settings.rate_limit``
    (so deployments tune it); ``limit`` and ``window_s`` make an inline rule.
    ``key="principal"`` counts per authenticated account (and so needs a valid
    token: 401 comes first); ``key="ip"`` per client address. ``per_route``
    gives each endpoint (method and path template) its own counter, so one
    router-level dependency limits every endpoint separately.
    """
    chosen: RateRule | str
    if rule is not None:
        chosen = rule
    elif limit is not None and window_s is not None:
        chosen = RateRule(limit=limit, window_s=window_s)
    else:
        raise ValueError("give a rule, or both limit and window_s")
    rule_named(RateLimitSettings(), chosen)  # fail at import time on a typo

    if key == "principal":

        async def per_principal(
            request: Request,
            settings: SettingsDep,
            counters: RateCountersDep,
            principal: CurrentPrincipal,
        ) -> None:
            await enforce(
                counters,
                settings.rate_limit,
                scope=_scope_of(request, scope, per_route),
                kind="principal",
                value=str(principal.id),
                rule=rule_named(settings.rate_limit, chosen),
            )

        return per_principal

    async def per_ip(request: Request, settings: SettingsDep, counters: RateCountersDep) -> None:
        await enforce(
            counters,
            settings.rate_limit,
            scope=_scope_of(request, scope, per_route),
            kind="ip",
            value=client_ip(request),
            rule=rule_named(settings.rate_limit, chosen),
        )

    return per_ip


#: The name the shared brief uses; same factory.
RateLimit = rate_limit
