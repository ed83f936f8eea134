"""The shipped YAML configs, as package data: `trickbench fit --config cifar10_fast` finds them by name
(trickbench/cli.py). Not Python code."""
