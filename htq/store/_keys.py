"""Every key and channel name of a namespace, built in one place (the map is in __init__)."""

from __future__ import annotations

from htq.models import Status

#: Every status, in the order of the per-status indexes in a transition's KEYS.
INDEXED = (*Status.__members__.values(),)


class Keys:
    """Every key and channel name of one namespace, built in one place."""

    def __init__(self, prefix: str) -> None:
        tag = f"{{{prefix}}}"
        self.prefix = prefix
        self.queue = f"{tag}:queue"
        self.claiming = f"{tag}:claiming"
        self.claiming_seen = f"{tag}:claiming:seen"
        self.leases = f"{tag}:leases"
        self.expiry = f"{tag}:expiry"
        self.ids = f"{tag}:ids"
        self.seq = f"{tag}:seq"
        self.stats = f"{tag}:stats"
        self.reaper = f"{tag}:reaper"
        self.all = f"{tag}:index:all"
        self.due = f"{tag}:due"  # also the channel on which a new earliest due time is told
        self.callbacks = f"{tag}:callbacks"
        self.servers = f"{tag}:servers"
        self.callbacks_taking = f"{tag}:callbacks:taking"
        self.callbacks_taking_seen = f"{tag}:callbacks:taking:seen"
        self.callback_leases = f"{tag}:callbacks:leases"
        self.done_channel = f"{tag}:done"
        self.cancel_channel = f"{tag}:cancel"
        self._tag = tag
        # KEYS[2..17] of every transition script: built once, sent with every call.
        self._shared = (
            self.queue,
            self.claiming,
            self.leases,
            self.expiry,
            self.ids,
            self.stats,
            self.seq,
            *(self.index(s) for s in INDEXED),
            self.all,
            self.due,
            self.callbacks,
        )

    def request(self, uuid: str) -> str:
        return f"{self._tag}:req:{uuid}"

    def index(self, status: Status | str) -> str:
        return f"{self._tag}:index:{status}"

    def idempotency(self, key: str) -> str:
        return f"{self._tag}:idem:{key}"

    def script_keys(self, uuid: str) -> list[str]:
        """The fixed KEYS layout every transition script shares (see _scripts._PRELUDE)."""
        return [self.request(uuid), *self._shared]


def text(value: bytes | str | int | None) -> str:
    """A reply as text ("" for none)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
