log_config = dict(interval=50)
seed = 0
