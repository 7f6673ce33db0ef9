"""RQ jobs: everything that need not happen while a caller waits."""
