"""trickbench's neutral helpers: the Lightning internals it relies on (`compat`), atomic file writes (`io`) and
the `trickbench` console command (`cli`). Nothing here imports Lightning at package import."""
