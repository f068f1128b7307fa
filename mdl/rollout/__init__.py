"""Staged rollouts: an alias's replicas move to a candidate version in steps (10%, 50%, 100%...),
the state held in the registry beside the pointer (so any machine can resume it).

    assign.py   which replicas run the candidate at a weight: exact (within one), sticky
"""
