"""The live state of Panic Alert: pure state machines for alerts, agents and regions.

Each ``decide(state, message, now, ...) -> (state, effects)`` is pure (no
I/O, no clock, no Ray); ``actors.effects`` lists what a runtime carries out.
Imports only ``geo``; ``cluster`` and ``gateway`` import from here.
"""
