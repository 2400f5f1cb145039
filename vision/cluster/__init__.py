"""Cameras sharded over a Ray cluster: the same camera units, a shared PostgreSQL store.

``ring.py`` assigns cameras to shards (consistent hashing), ``shard.py`` is the shard
actor (a :class:`~vision.pipeline.Pipeline` over its cameras), ``inference.py`` the
shared detector replicas, ``control.py`` the control plane that starts them and that
``run``, ``serve`` and ``cluster status`` use. Ray is imported only here (the
``cluster`` extra), so a single process never needs it.
"""
