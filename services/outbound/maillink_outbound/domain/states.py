"""The stored state machine of one send request. Pure.

    scheduled -> pending -> sending -> sent | failed | cancelled,  and  sending -> unknown

`sending` is entered right before SMTP DATA, with the Message-ID already fixed. A request found in
`sending` by a process that did not put it there (the sender crashed) is never simply resent: the
account's Sent folder is searched for its Message-ID first (service_layer/recovery.py decides what follows).
"""
from maillink_schemas.outbound import SendState as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.SCHEDULED: frozenset({S.PENDING, S.CANCELLED}),
    S.PENDING: frozenset({S.SENDING, S.CANCELLED, S.FAILED}),
    # back to pending: a transient error before the server took the message, or the recovery found
    # no copy at a provider that files everything it accepts (so it was never accepted).
    S.SENDING: frozenset({S.SENT, S.FAILED, S.PENDING, S.UNKNOWN}),
    S.SENT: frozenset(), S.FAILED: frozenset(), S.CANCELLED: frozenset(), S.UNKNOWN: frozenset(),
}
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
CANCELLABLE = frozenset({S.SCHEDULED, S.PENDING})


def sources(target: S) -> list[S]:
    """The states a request may be in for `target` to be entered (the filter of a conditional update)."""
    return [s for s, nxt in TRANSITIONS.items() if target in nxt]
