"""Twin bookkeeping: JSON merge patches, their depth, patches folded together while offline.
``iothub.inbound`` holds the desired properties and their ``$version`` by these rules.

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


def apply(state, version, desired, full):
    """Fold desired properties carrying ``version`` into ``state``, a list ``[$version held (-1
    before any GET), the desired document]``: a full GET's section replaces the document, a
    patch is merged into it. Only if ``version`` is newer than the one held; returns what was
    applied, without ``$version`` (the application hears that), or None if stale."""
    if not isinstance(version, int) or version <= state[0]:
        return None
    desired = dict(desired)
    desired.pop("$version", None)
    if full:
        state[1] = desired
    else:
        merge_patch(state[1], desired)
    state[0] = version
    return desired


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
