"""drift-run: the fixed-rate control loop (clock, chunk schedule, safety, sessions, monitor) that runs
a bundle on a LeRobot arm. Pure math (clock, chunks, safety) lives apart from the runner's plumbing."""
