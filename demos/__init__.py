"""Drift's demos, installed with it: the README's main job on the emulated SO-100 (``demos.arm``,
``make demo`` / ``drift-demo``), the earlier arm-free toy task (``demos.toy``), and the small
libraries they share with the tests and benchmarks (recording an emulated arm, training through
``lerobot-train``, toy tasks and the methods compared on them, synthetic policies of the benchmark
sizes). ``toy_methods`` needs LeRobot's DiffusionPolicy (the ``bench`` extra)."""
