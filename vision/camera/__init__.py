"""The camera unit: one camera's tracker, scene, rules and lifecycle, fed frame contexts, with
snapshot()/restore() of everything that must survive a restart or a move.

``context.py`` is what rules are handed per frame, ``analysis.py`` the pure per-frame stages,
``unit.py`` the unit itself. (Nothing is imported here: rules import the context, and the
config imports the rules.)
"""
