"""Guard duty: posts, checkpoints, patrol plans, the roster, and what guards record on shift."""
