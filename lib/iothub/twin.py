"""Twin bookkeeping: the desired properties held, their ``$version``, JSON merge patches.

Rules (DESIGN section 3): a desired patch applies only if its ``$version`` is newer than the
one held (older or equal ones are stale: they were already folded into a full GET); ``null``
deletes a property; a full GET replaces the desired document if its version is newer.
"""


MAX_DEPTH = 10  # IoT Hub: objects nest at most 10 levels below the section (desired, reported)


def too_deep(doc, limit=MAX_DEPTH):
    """Whether ``doc`` nests objects more than ``limit`` levels below itself.

    Without recursion: a board's C stack overflows at a few dozen nested calls, and what the
    hub sends must never be able to raise out of the session. IoT Hub never sends deeper than
    ``MAX_DEPTH``, so a deeper document is malformed and is refused whole."""
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for value in node.values() if isinstance(node, dict) else node:
            if isinstance(value, (dict, list)):
                stack.append((value, depth + 1 if isinstance(value, dict) else depth))
    return False


def merge_patch(target, patch):
    """Apply a JSON merge patch (RFC 7396) to the dict ``target`` in place; returns it."""
    for key in patch:
        value = patch[key]
        if value is None:
            if key in target:
                del target[key]
        elif isinstance(value, dict):
            old = target.get(key)
            if not isinstance(old, dict):
                old = {}
                target[key] = old
            merge_patch(old, value)
        else:
            target[key] = value
    return target


class TwinState:
    """What the device knows of its twin's desired side. ``version`` is -1 before any GET."""

    def __init__(self):
        self.desired = {}
        self.version = -1

    def apply_full(self, desired):
        """Take the ``desired`` section of a full GET. Returns True if it was newer and applied."""
        version = desired.get("$version")
        if not isinstance(version, int) or version <= self.version:
            return False
        self.desired = dict(desired)
        self.desired.pop("$version", None)
        self.version = version
        return True

    def apply_patch(self, version, patch):
        """Merge a desired patch carrying ``version``. Returns False (and changes nothing) if stale."""
        if version <= self.version:
            return False
        patch = dict(patch)
        patch.pop("$version", None)
        merge_patch(self.desired, patch)
        self.version = version
        return True


def combine_patches(first, second):
    """Fold patch ``second`` into ``first`` (both still to be sent): unlike ``merge_patch``,
    ``None`` is kept, because it still has to tell the hub to delete that property."""
    for key in second:
        value = second[key]
        old = first.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            combine_patches(old, value)
        else:
            first[key] = value
    return first
