"""What lets a search survive a crash and go on: trial checkpoints, the ledger, Ray state backups, pruning."""
