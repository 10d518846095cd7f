"""Arm definitions (so100, so101, koch) as LeRobot configs; the emulated arms are planned in issue 3."""
