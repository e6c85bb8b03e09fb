"""The streaming session: the asyncio sender (``coding``: fixed or planned) and receiver,
the progressive decode and its sans-I/O policy (``scheduler``), and receiver-side
bookkeeping for sequences."""
