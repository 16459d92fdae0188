"""Consumer groups of the Event Hub-compatible endpoint, as ``az iot hub consumer-group`` keeps
them: ``$Default`` always, up to 20 more by name (IoT Hub's standard tier). Readers in different
groups read the same events, each at its own place."""

from __future__ import annotations

import re

from ..protocol.errors import HubError, bad_request
from ..storage.store import Store

DEFAULT = "$Default"
MAX_GROUPS = 20
# Event Hubs: letters, digits, '.', '_' and '-', up to 50 characters, starting and ending with a
# letter or digit.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$")


class ConsumerGroups:
    def __init__(self, store: Store) -> None:
        self.store = store

    def names(self) -> list[str]:
        return [DEFAULT, *self.store.consumer_groups()]

    def exists(self, name: str) -> bool:
        return name.lower() in (n.lower() for n in self.names())

    def create(self, name: str) -> None:
        if not _NAME.match(name):
            raise bad_request(f"invalid consumer group name {name[:60]!r}: letters, digits, '.', "
                              "'_' and '-', up to 50")
        if self.exists(name):
            raise HubError(409, "ConsumerGroupAlreadyExists", f"consumer group {name!r} exists")
        if len(self.store.consumer_groups()) >= MAX_GROUPS:
            raise HubError(403, "ConsumerGroupsLimitExceeded", f"at most {MAX_GROUPS} consumer groups")
        self.store.add_consumer_group(name)

    def delete(self, name: str) -> None:
        if name.lower() == DEFAULT.lower():
            raise bad_request("$Default cannot be deleted")
        if not self.store.delete_consumer_group(name):
            raise HubError(404, "ConsumerGroupNotFound", f"no consumer group {name!r}")
