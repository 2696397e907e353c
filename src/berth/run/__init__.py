"""`berth run`: the live front. Informers feed the engine, the queue feeds its cycle, outcomes
become bindings, events and metrics (runner.py wires the process, loop.py is the loop)."""

from berth.run.runner import Runner, RunOptions, default_identity

__all__ = ["RunOptions", "Runner", "default_identity"]
