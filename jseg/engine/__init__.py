"""Training engine: optimizer construction, LR schedule, runner."""
