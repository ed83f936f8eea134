"""The ensemble report's pieces: its metrics (`metrics`) and figures (`plots`); the command itself is
trickbench/scripts/ensemble.py."""
