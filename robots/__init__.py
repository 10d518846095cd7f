"""Arm definitions (so100, so101, koch) as LeRobot configs, and the emulated arms LeRobot's own
classes connect to (servo chains on a pty, ZMQ cameras, faults, drift-sim). Importing this package
imports nothing heavy: the emulator process stays free of LeRobot and torch."""
