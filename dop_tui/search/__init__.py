"""Search strategies over the space (``strategies``), the scenario scheduler (``scheduler``), the tuning loop
that yields events (``loop``, ``events``) and strategies compared in replay (``compare``).

Nothing is imported here, so ``dop_tui.search.events`` stays cheap for its consumers.
"""
