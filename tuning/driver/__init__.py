"""The search driver: flags and pre-start checks, Ray setup, the Tuner and its trainable, progress, retrain."""
