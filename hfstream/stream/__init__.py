"""The streaming session: the asyncio sender and receiver, the progressive decode and
its sans-I/O policy, and receiver-side bookkeeping for sequences."""
