"""Programs built on the library: the ``hfstream`` command, the demo, the transport
benchmark, and the receiver-side bookkeeping they share.

Nothing in the library core imports from here; ``sim/`` and the examples may.
"""
