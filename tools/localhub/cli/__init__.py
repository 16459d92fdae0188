"""The ``localhub`` command (``main``); ``jobs`` and ``uploads`` add their verbs to it."""
